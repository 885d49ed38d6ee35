"""What the default console leaves out: start-up chatter that native code prints straight to stderr.

Python loggers are quieted by level (:func:`fleetvision.cli.configure_logging`) and Spark's JVM by its
log4j2 file; what is left is printed without a level, so it is recognised here line by line:

* Ivy's dependency report for ``spark.jars.packages`` (Spark quiets it only in its own tests);
* TensorFlow's native start-up lines, printed before its logging exists, so ``TF_CPP_MIN_LOG_LEVEL``
  cannot stop them ("All log messages before absl::InitializeLog() ...", then ``I0000 ...`` lines on
  oneDNN and the CUDA probe), once per process: the driver and every Python worker;
* the JVM's own notes before its logging starts.

Errors always pass: absl ``E``/``F`` lines, and Ivy lines that tell of a failure.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# absl's "I1203 08:33:41.123456   1234 file.cc:52] ..." (before its logging starts the time reads
# "00:00:<epoch seconds>"): INFO and WARNING; E and F pass
_ABSL_INFO = re.compile(r"^[IW]\d{4} [\d:.]+\s+\d+ [\w.+-]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# the JVM before log4j: the vector API Spark 4 enables; Spark naming its default profile (--verbose only)
_JVM_STARTUP = ("WARNING: Using incubator modules:", "Using Spark's default log4j profile:")
_IVY_REPORT_START = (":: loading settings ::", "Ivy Default Cache set to:")
# Ivy resolves synchronously before the JVM logs anything else, and its report ends with the retrieve
# summary ("\t3 artifacts copied, 0 already retrieved ..."). On a cold cache the report also holds
# download lines, blank lines, a proxy hint and a "problems summary" of the extra repositories that cannot
# be reached (spark-packages): all chatter while the resolution succeeds.
_IVY_REPORT_END = re.compile(r"^\t\d+ artifacts copied")
# what ends the report early: a log4j line ("26/12/04 13:31:39 WARN ...") or the failure's exception
_AFTER_IVY = re.compile(r"^(\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} |Exception in thread )")
_IVY_REPORT_KEEP = ("UNRESOLVED", "FAILED", "module not found", "ERROR", "::::::")


def is_native_startup_noise(line: str) -> bool:
    """Whether a stderr line is TensorFlow's or the JVM's start-up chatter (never an error)."""
    return line.startswith(_ABSL_PREAMBLE) or line.startswith(_JVM_STARTUP) or bool(_ABSL_INFO.match(line))


class JvmStderrFilter:
    """Which lines of the driver JVM's stderr reach the console: all but Ivy's report and start-up chatter.

    In local mode the JVM also relays its Python workers' stderr, so their TensorFlow start-up lines
    pass through here too. A line is dropped while inside Ivy's report (from its first line to its
    retrieve summary, or to the first log4j line or exception if it stops early) unless it tells of a
    failure; outside it, only start-up chatter is.
    """

    def __init__(self) -> None:
        self._in_report = False

    def keep(self, line: str) -> bool:
        """Whether to print ``line`` (one line of the JVM's stderr)."""
        if line.startswith(_IVY_REPORT_START) or (" added as a dependency" in line and not line.startswith("\t")):
            self._in_report = True
        elif self._in_report and _IVY_REPORT_END.match(line):
            self._in_report = False
            return False
        elif self._in_report and _AFTER_IVY.match(line):
            self._in_report = False
        if self._in_report:
            return any(word in line for word in _IVY_REPORT_KEEP)
        return not is_native_startup_noise(line)


@contextmanager
def native_startup_filtered() -> Iterator[None]:
    """Hold what is written to file descriptor 2 during the block, then print it without start-up chatter.

    For imports that load TensorFlow in this process: its native libraries write to the descriptor,
    past Python's ``sys.stderr``. Everything else written meanwhile (warnings, a traceback's lead-up)
    is printed afterwards, in order.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for raw in held:
                if not is_native_startup_noise(raw.decode("utf-8", errors="replace")):
                    os.write(2, raw)
