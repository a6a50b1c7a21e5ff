# ngbench: `make help` lists the targets. Each figure or table target runs one sweep of sweeps/ (resume=true:
# a rerun skips the cells that finished) and then `python -m ngbench.report` on its directory, also when some
# cells failed; make's exit code is the sweep's. ARGS="..." passes more Hydra overrides to the sweep, e.g.
#   make fig6 ARGS="platform=cpu batch_size=1"        make fig6 ARGS="hydra.sweep.dir=/data/fig6"
PY ?= python
ARGS ?=
SWEEP = $(PY) -m ngbench --config-dir sweeps -m
REPORT = $(PY) -m ngbench.report

# The sweep directory: hydra.sweep.dir=... from ARGS when given, else the config's own, outputs/sweeps/<config>.
sweep_dir = $(or $(patsubst hydra.sweep.dir=%,%,$(filter hydra.sweep.dir=%,$(ARGS))),outputs/sweeps/$(1))
# After a sweep whose exit code is in $s: report on $(1)'s directory unless the sweep stopped on bad input (2).
report = if [ $$s -le 1 ]; then $(REPORT) $(call sweep_dir,$(1)) || s=$$?; fi; exit $$s
# Sweep config $(1) with the overrides $(2) and ARGS, then its report.
sweep = $(SWEEP) --config-name $(1) $(2) $(ARGS); s=$$?; $(call report,$(1))

.PHONY: help test-fast test test-gpu smoke fidelity fig5 fig6 fig7 fig8 fig9 table1 table4 table5 mixtral mutation

help:  ## list the targets
	@awk -F':.*## ' '/^[a-z0-9-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

test-fast:  ## the quick CPU tests (no `slow`, no `gpu` mark; one real CLI run), about 75 s on 2 cores: before each commit
	$(PY) -m pytest -q -p no:cacheprovider -p no:hypothesispytest -n auto --maxprocesses 4 -m "not slow and not gpu"

test:  ## the whole CPU suite (tiny models end to end, sweeps, docs): before a merge
	$(PY) -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4

test-gpu:  ## the GPU tier (tests/test_gpu.py) on a CUDA machine; benchmarks/gpu_tests.sh runs it in one device call
	$(PY) -m pytest -v -p no:cacheprovider -m gpu

smoke:  ## tiny CPU sweep of the six foundation models (batch 1, 2) + its report, in a few minutes
	$(call sweep,smoke)

fidelity:  ## profiled/clean and rebuilt/clean of the six foundation models, batch 1/8, fp32/fp16 (GPU)
	$(call sweep,fidelity)

fig5:  ## Figure 5: GPU energy per inference (the zoo sweep's GPU cells)
	$(call sweep,zoo,platform=cuda)

fig6:  ## Figure 6: group breakdown per model and batch size, CPU-only and CPU+GPU (the whole zoo sweep)
	$(call sweep,zoo)

fig7:  ## Figure 7: PyTorch vs ONNX Runtime on GPT-2, GPT-2 XL and Llama-2 (GPU)
	$(call sweep,flows)

fig8:  ## Figure 8: eager vs Inductor vs TensorRT on swin_t, swin_b, detr, segformer (GPU)
	$(call sweep,fusion)

fig9:  ## Figure 9: Llama-3-8B, LLM.int8() and fp16, over sequence lengths (GPU, bitsandbytes)
	$(SWEEP) --config-name fig9 $(ARGS); fp16=$$?; $(SWEEP) --config-name fig9 +quant=int8 $(ARGS); s=$$?; \
	  if [ $$fp16 -gt $$s ]; then s=$$fp16; fi; $(call report,fig9)

table1:  ## Table I: non-GEMM operators and their input shapes (the zoo sweep's GPU cells)
	$(call sweep,zoo,platform=cuda)

table4:  ## Table IV: the most time-consuming non-GEMM group per model (the zoo sweep's GPU cells)
	$(call sweep,zoo,platform=cuda)

table5:  ## Table V: fusion rate and non-GEMM time before/after fusion (Figure 8's cells)
	$(call sweep,fusion)

mixtral:  ## Mixtral-8x7B over two GPUs, batch 1-8 (ARGS="platform.devices=[...]" for more)
	$(call sweep,multigpu)

# MUTATION_SAMPLE=8 runs a fixed 1-in-8 sample of the mutants (mutation_report.py --names lists them once the
# first `mutmut run`, on a few mutants, has made them all): those whose name's crc32 % 8 is MUTATION_RESIDUE.
# Residue 0 is the published sample (docs/results/mutation.md, beside the first run's counts); another residue
# is a second sample of the same size, to check that the kill rate does not hold only for the mutants the tests
# were written against: its page goes to mutants/mutation-8-<k>.md (MUTATION_PAGE=... to choose), without the
# `before` column (the baseline counted residue 0).
MUTATION_SAMPLE ?= 1
MUTATION_RESIDUE ?= 0
MUTATION_PAGE ?= $(if $(filter 0,$(MUTATION_RESIDUE)),docs/results/mutation.md,mutants/mutation-$(MUTATION_SAMPLE)-$(MUTATION_RESIDUE).md)
MUTATION_BASELINE = $(if $(filter 0,$(MUTATION_RESIDUE)),--baseline docs/results/mutation-before.json)
MUTATION_PICK = --sample $(MUTATION_SAMPLE) --residue $(MUTATION_RESIDUE)
MUTMUT = OMP_NUM_THREADS=1 mutmut run --max-children 1

mutation:  ## mutation testing of the measurement core (mutmut, one worker; hours on 2 cores; MUTATION_SAMPLE=8: a 1-in-8 sample, 15-40 min; MUTATION_RESIDUE=1..7: another one, -> mutants/mutation-8-<k>.md) -> docs/results/mutation.md
	rm -rf mutants
	start=$$(date +%s); \
	  if [ $(MUTATION_SAMPLE) -gt 1 ]; then \
	    $(MUTMUT) "ngbench.report.query.*__mutmut_1" > /dev/null || exit $$?; \
	    names=$$($(PY) benchmarks/mutation_report.py --names $(MUTATION_PICK)) || exit $$?; \
	    [ -n "$$names" ] || { echo "make mutation: no mutant in the sample $(MUTATION_PICK)" >&2; exit 2; }; \
	    $(MUTMUT) $$names || exit $$?; \
	  else $(MUTMUT) || exit $$?; fi; \
	  minutes=$$(( ($$(date +%s) - start) / 60 )); \
	  $(PY) benchmarks/mutation_listed.py mutants/listed.json; s=$$?; \
	  $(PY) benchmarks/mutation_report.py --out $(MUTATION_PAGE) $(MUTATION_BASELINE) \
	    --listed mutants/listed.json $(MUTATION_PICK) --minutes $$minutes || exit $$?; \
	  echo "wrote $(MUTATION_PAGE)"; exit $$s
