# ngbench: `make help` lists the targets. ARGS="..." passes extra Hydra overrides to a sweep,
# e.g. make fig6 ARGS="platform=cpu batch_size=1"
PY ?= python
ARGS ?=
SWEEP = $(PY) -m ngbench --config-dir sweeps -m
REPORT = $(PY) -m ngbench.report

.PHONY: help install run test lint smoke fig5 fig6 fig7 fig8 fig9 table1 table4 table5 clean

help:  ## list the targets
	@grep -E '^[a-z0-9 ]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

install:  ## install ngbench with the test extras (torch 2.14.1 from the local wheel cache first)
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e ".[test]"

run:  ## profile the default config (gpt2, platform=auto, bundled sample data)
	$(PY) -m ngbench $(ARGS)

test:  ## run the test suite (CPU)
	$(PY) -m pytest -q

lint:  ## ruff
	$(PY) -m ruff check ngbench tests benchmarks

smoke:  ## tiny CPU sweep of the six foundation models + its report
	$(SWEEP) --config-name smoke $(ARGS) && $(REPORT) outputs/sweeps/smoke

fig5:  ## Figure 5: GPU energy per inference
	$(SWEEP) --config-name fig5 $(ARGS) && $(REPORT) outputs/sweeps/fig5

fig6:  ## Figure 6: group breakdown per model and batch size, CPU and GPU
	$(SWEEP) --config-name fig6 $(ARGS) && $(REPORT) outputs/sweeps/fig6

fig7:  ## Figure 7: PyTorch vs ONNX Runtime on the LLMs
	$(SWEEP) --config-name fig7 $(ARGS) && $(REPORT) outputs/sweeps/fig7

fig8:  ## Figure 8: eager vs Inductor vs TensorRT on swin_t, swin_b, detr, segformer
	$(SWEEP) --config-name fig8 $(ARGS) && $(REPORT) outputs/sweeps/fig8

fig9:  ## Figure 9: Llama-3-8B LLM.int8() vs fp16 over sequence lengths
	$(SWEEP) --config-name fig9 $(ARGS) && $(SWEEP) --config-name fig9 +quant=int8 $(ARGS) && $(REPORT) outputs/sweeps/fig9

table1 table4:  ## Tables I and IV: non-GEMM operators with shapes, dominant group per model (GPU)
	$(SWEEP) --config-name table4 $(ARGS) && $(REPORT) outputs/sweeps/table4

table5:  ## Table V: fusion rate and non-GEMM time before/after fusion
	$(SWEEP) --config-name table5 $(ARGS) && $(REPORT) outputs/sweeps/table5

clean:  ## remove outputs/ (runs, sweeps, ONNX cache)
	rm -rf outputs
