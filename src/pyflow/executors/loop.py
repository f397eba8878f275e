"""The zygote's loop in C (zygote.c), from the Python side: loading it, and taking over from it for
every run it hands back.

Standard library only: part of the worker's script (channel.worker_source), run as one namespace with
codec.py, nodeproc.py, collect.py and worker.py.
"""

import os

LOOP_CHILD, LOOP_END, LOOP_PYTHON, LOOP_FINISH = range(4)


def _loop_state(ctypes):
    """zygote.c's struct loop, field for field."""
    i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p

    class LoopState(ctypes.Structure):
        _fields_ = [("infd", i32), ("outfd", i32), ("pid_namespace", i32), ("terms_set", i32),
                    ("timeout_s", ctypes.c_double), ("stdout_cap", i64), ("result_cap", i64),
                    ("scratch", ctypes.c_char_p), ("control", ptr), ("control_len", i64), ("control_size", i64),
                    ("frame", ptr), ("frame_len", i64), ("frame_size", i64),
                    ("spare_pid", i32), ("spare_task_w", i32), ("spare_out_r", i32), ("spare_res_r", i32),
                    ("child_task_r", i32), ("child_res_w", i32), ("child_name_fd", i32),
                    ("out", ptr), ("res", ptr), ("spill", ptr), ("out_size", i64), ("res_size", i64),
                    ("spill_size", i64)]
    return LoopState


def load_loop(path, infd, outfd, pid_namespace):
    """(library, its state) of the zygote's loop in C at `path`, or None (no path, or it cannot be
    loaded: the loop in Python serves). Loaded with PyDLL, which holds the interpreter lock while the
    loop runs, as a fork from the interpreter needs."""
    if not path:
        return None
    try:
        import ctypes
        lib = ctypes.PyDLL(path)
        state_type = _loop_state(ctypes)
        lib.pyflow_loop_size.restype = ctypes.c_int64
        if lib.pyflow_loop_size() != ctypes.sizeof(state_type):
            return None
        for name in ("pyflow_loop", "pyflow_loop_keep_control"):
            getattr(lib, name).argtypes = [ctypes.POINTER(state_type)]
            getattr(lib, name).restype = ctypes.c_int
        state = state_type(infd=infd, outfd=outfd, pid_namespace=int(bool(pid_namespace)), spare_task_w=-1,
                           spare_out_r=-1, spare_res_r=-1, child_task_r=-1, child_res_w=-1,
                           child_name_fd=-1)
        return lib, state, ctypes
    except (OSError, AttributeError):
        return None


def serve_loop(loop, infd, outfd, pid_namespace):
    """Serve with the loop in C; take over in Python whenever it returns (zygote.c says when)."""
    lib, state, ctypes = loop
    while True:
        done = lib.pyflow_loop(ctypes.byref(state))
        if done == LOOP_CHILD:
            try:
                name_fd = state.child_name_fd if state.child_name_fd >= 0 else None
                serve_task(state.child_task_r, state.child_res_w, name_fd)  # ends the process
            finally:
                os._exit(70)  # never the zygote's loop again, in a child
        if done == LOOP_FINISH:
            report_cleanup(outfd, after_run(_LAST_TERMS[1][1], pid_namespace))
            continue
        if done != LOOP_PYTHON:
            return
        spare = None
        if state.spare_pid:
            spare = Spare.adopt(state.spare_pid, state.spare_task_w, state.spare_out_r, state.spare_res_r)
            state.spare_pid, state.spare_task_w, state.spare_out_r, state.spare_res_r = 0, -1, -1, -1
        frame = ctypes.string_at(state.frame, state.frame_len) if state.frame_len >= 0 else None
        if not serve_one(infd, outfd, pid_namespace, spare, frame):
            return
        if frame is not None and _LAST_TERMS[0] == hash(frame):
            _keep_terms(lib, state, ctypes)


def _keep_terms(lib, state, ctypes):
    """Give the loop in C the terms of the control frame Python just served, so that it serves the next
    tasks like it itself."""
    state.terms_set = 0
    limits, scratch = _LAST_TERMS[1]
    try:
        state.stdout_cap, state.result_cap = answer_caps(limits)
        state.timeout_s = run_timeout(limits)
        state.scratch = b"".join(os.fsencode(path) + b"\0" for path in scratch) + b"\0"
    except (TypeError, ValueError, OverflowError):
        return
    state.terms_set = int(lib.pyflow_loop_keep_control(ctypes.byref(state)) == 0)
