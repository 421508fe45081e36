"""The `tap-toggl-tasks` command, and `python -m tap_toggl_tasks`: the tap's command line.

Importing the SDK and its dependencies makes some 50,000 objects (modules, classes, functions)
that live as long as the process. Python's garbage collector would look through them again and
again while they are imported, finding almost nothing to free, and take them apart at exit,
when the process is ending anyway: at 1,000 tasks that was a quarter of the tap's CPU time
(docs/performance.md). So it is paused while they are imported, and then those objects are
moved out of its reach (`gc.freeze`); everything made after that, the records of a sync
included, is collected as before. The cost: the few cycles of objects dropped during the
imports stay (half a MiB of peak memory).
"""

import gc


def main() -> None:
    gc.disable()
    try:
        from tap_toggl_tasks.tap import TapTogglTasks  # noqa: PLC0415 (after gc.disable)
    finally:
        gc.freeze()
        gc.enable()
    TapTogglTasks.cli()


if __name__ == "__main__":
    main()
