"""Run one function in a child process forked before its input exists: hand the input over later, collect the
result when it is needed.

The report draws its figures this way. Drawing (each figure twice, PNG and PDF) is about half of a report's
CPU time and needs nothing the tables compute. The child is forked before the sweep is read, so that it
imports and warms up the drawing library (`prepare`) while this process reads and aggregates the files; then
it gets its input (`send`: pickled through a pipe, what the figures draw, worked out here; more of it may follow)
and draws while this process makes the tables, on two CPUs side by side. The result comes back pickled. Where fork is
not the way to start processes (Windows, macOS) or only one CPU is available, nothing is forked: the function
runs in this process when its result is asked for.

The two processes can share a list of jobs through `Tickets`: each takes the next job number when it is free,
so that this process, once done with its own work, draws the figures the child has not started.
"""

from __future__ import annotations

import gc
import os
import queue
import sys
import threading


def forking_helps() -> bool:
    """Whether a forked child can run beside this process: fork-started processes and a second CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return sys.platform.startswith("linux") and cpus > 1


class Tickets:
    """Job numbers 0, 1, 2, ... each handed out once, to whichever process asks first: this one or a child
    forked after this was made (the counter is in shared memory)."""

    def __init__(self):
        self.shared, self.next = None, 0
        if forking_helps():
            import multiprocessing

            self.shared = multiprocessing.get_context("fork").Value("i", 0)

    def taken(self) -> int:
        """How many numbers have been handed out so far."""
        return self.next if self.shared is None else self.shared.value

    def take(self) -> int:
        if self.shared is None:
            self.next += 1
            return self.next - 1
        with self.shared.get_lock():
            self.shared.value += 1
            return self.shared.value - 1


class Elsewhere:
    """`function(value, more)` in a child process forked now, where `prepare()` runs first; `send(value)` hands
    the input over: the first value sent is `value`, each later one what a call of `more()` returns there (in
    the order sent; EOFError once result() was asked for and none is left). `result()` returns the function's
    value or raises its exception, and `close()` ends a child whose input never came (this process failed
    first). Fork before starting any thread (DuckDB's): a forked child holds only the thread that forked."""

    def __init__(self, function, prepare=None):
        self.function, self.process, self.values, self.sending = function, None, [], None
        if not forking_helps():
            return
        import multiprocessing

        context = multiprocessing.get_context("fork")
        inputs, self.inputs = context.Pipe(duplex=False)
        self.results, results = context.Pipe(duplex=False)
        self.ready = context.Event()
        sys.stdout.flush()
        sys.stderr.flush()
        # What exists now (the imports) lives to the end of the child: frozen there, the collector no longer walks
        # it on each full collection (~0.1 s of a report's drawing) nor copies the pages it would touch. Here
        # nothing changes: the freeze is undone once the child is forked.
        gc.freeze()
        self.process = context.Process(target=_serve, args=(function, prepare, inputs, results, self.ready,
                                                            (self.inputs, self.results)), daemon=True)
        try:
            self.process.start()
        finally:
            gc.unfreeze()
        inputs.close()
        results.close()

    def prepared(self, timeout: float = 0.0) -> bool:
        """Whether the child is done preparing and waits for its input (waiting up to `timeout` s for it); True
        without a child (nothing to wait for)."""
        return self.process is None or self.ready.wait(timeout)

    def send(self, value) -> None:
        """Hand `value` to the child (forked, pickled now: what changes in it later is not sent). The child may
        still be preparing: the bytes go down the pipe from a thread, so that this process goes on meanwhile."""
        if self.process is None:
            self.values.append(value)
            return
        from multiprocessing.reduction import ForkingPickler

        data = bytes(ForkingPickler.dumps(value))
        if self.sending is None:
            self.outbox = queue.SimpleQueue()
            self.sending = threading.Thread(target=self._write, daemon=True)
            self.sending.start()
        self.outbox.put(data)

    def _write(self) -> None:
        """The values sent, down the pipe one after the other, until the None that ends them (_no_more)."""
        try:
            while (data := self.outbox.get()) is not None:
                self.inputs.send_bytes(data)
        except OSError:   # the child is gone; result() says how it ended
            pass
        finally:
            self.inputs.close()

    def _no_more(self) -> None:
        if self.sending is not None:
            self.outbox.put(None)

    def result(self):
        self._no_more()
        if self.process is None:
            if not self.values:
                raise RuntimeError("Elsewhere.result() before send()")
            return self.function(self.values[0], _reader(self.values[1:]))
        try:
            outcome, value = self.results.recv()
        except EOFError:   # the child died without a word (killed, out of memory)
            self.process.join()
            raise RuntimeError(f"the child process drawing the figures ended with exit status "
                               f"{self.process.exitcode} and no result") from None
        finally:
            self.results.close()
        self._end()
        if outcome == "error":
            raise value
        return value

    def close(self) -> None:
        """End the child if its result was not collected: one still waiting for its input (this process failed
        first) is stopped at once, before it has written anything; one that has its input is let finish, so
        that no file is left half-written."""
        if self.process is None or self.process.exitcode is not None:
            return
        if self.sending is None:
            self.inputs.close()
            self.process.terminate()
        self._no_more()
        self._end()
        self.results.close()

    def _end(self) -> None:
        if self.sending is not None:
            self.sending.join()
        self.process.join()


def _reader(values: list):
    """more() where nothing is forked: the values sent after the first, one per call, then EOFError as from a
    pipe."""
    left = iter(values)

    def more():
        try:
            return next(left)
        except StopIteration:
            raise EOFError("nothing more was sent") from None

    return more


def _serve(function, prepare, inputs, results, ready, parents_ends) -> None:
    """The child: prepare (then set `ready`), wait for the input, send back ("ok", value) or ("error",
    exception). `parents_ends` (the pipes' ends the parent keeps, inherited at the fork) are closed here first:
    otherwise more() would wait for ever once the parent has closed its own end."""
    from ngbench.errors import UserError

    for end in parents_ends:
        end.close()
    try:
        unprepared = None
        if prepare is not None:
            try:
                prepare()
            except BaseException as exc:   # raised in the function's place, once the input is there
                unprepared = exc
        ready.set()
        try:
            value = inputs.recv()
        except EOFError:   # the parent failed before it had an input to send
            return
        gc.freeze()   # the prepared library and the input live to the end too
        if unprepared is not None:
            raise unprepared
        results.send(("ok", function(value, inputs.recv)))
    except BaseException as exc:  # the parent raises it; the traceback is shown here, where it is known
        if not isinstance(exc, UserError):
            import traceback

            traceback.print_exc()
        try:
            results.send(("error", exc))
        except Exception:  # an exception that cannot be pickled
            results.send(("error", RuntimeError(f"{type(exc).__name__}: {exc} (in the child process)")))
    finally:
        results.close()
