"""Run one function in a forked child process while this process goes on, and collect its result later.

The report draws its figures this way: drawing (each figure twice, PNG and PDF) is about half of a report's
CPU time and needs nothing the tables compute, so on two CPUs the two halves run side by side. The child gets
everything it needs with the fork (nothing is pickled on the way in); its result comes back pickled through a
pipe. Where fork is not the way to start processes (Windows, macOS) or only one CPU is available, the function
runs in this process when its result is asked for.
"""

from __future__ import annotations

import os
import sys


def forking_helps() -> bool:
    """Whether a forked child can run beside this process: fork-started processes and a second CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return sys.platform.startswith("linux") and cpus > 1


class Elsewhere:
    """`function()` started in a child process (or deferred, see the module); `result()` returns its value or
    raises its exception."""

    def __init__(self, function):
        self.function, self.process = function, None
        if not forking_helps():
            return
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.receiver, sender = context.Pipe(duplex=False)
        sys.stdout.flush()
        sys.stderr.flush()
        self.process = context.Process(target=_send_result, args=(function, sender), daemon=True)
        self.process.start()
        sender.close()

    def result(self):
        if self.process is None:
            return self.function()
        try:
            outcome, value = self.receiver.recv()
        except EOFError:   # the child died without a word (killed, out of memory)
            self.process.join()
            raise RuntimeError(f"the child process drawing the figures ended with exit status "
                               f"{self.process.exitcode} and no result") from None
        finally:
            self.receiver.close()
        self.process.join()
        if outcome == "error":
            raise value
        return value


def _send_result(function, sender) -> None:
    from ngbench.errors import UserError

    try:
        sender.send(("ok", function()))
    except BaseException as exc:  # the parent raises it; the traceback is shown here, where it is known
        if not isinstance(exc, UserError):
            import traceback

            traceback.print_exc()
        try:
            sender.send(("error", exc))
        except Exception:  # an exception that cannot be pickled
            sender.send(("error", RuntimeError(f"{type(exc).__name__}: {exc} (in the child process)")))
    finally:
        sender.close()
