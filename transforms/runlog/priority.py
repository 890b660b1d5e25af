"""Work that nothing after it waits for yields the cores to the work the day waits for.

After the load, the receipts and the Data Docs run beside the dimensions, the warnings and the
townships' workbooks. The day ends when the warnings' chain ends (the run report and the
platform views wait for it); the receipts and the Data Docs are waited for by the run report
alone, and finish well before the warnings do. With more ready processes than cores, the kernel
shares the cores evenly unless told otherwise: at a lower priority (a higher nice value) the
side work takes what the critical path leaves, and still finishes long before it is waited for.
"""

from __future__ import annotations

import os

# enough for the scheduler to favour the critical path clearly (about 10x the CPU share at
# equal demand), not so much that the side work starves on a busy worker
SIDE_WORK_NICENESS = 10


def yield_to_critical_path() -> int:
    """Lower this process's priority to SIDE_WORK_NICENESS (never raise it: a process already
    lower stays as it is); the niceness it now has. Called once per task that does side work;
    again, in the same process, it changes nothing."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < SIDE_WORK_NICENESS:
        os.setpriority(os.PRIO_PROCESS, 0, SIDE_WORK_NICENESS)
    return os.getpriority(os.PRIO_PROCESS, 0)
