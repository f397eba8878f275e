"""Host libraries an environment's extension modules need: found by name, never more than a file."""

from __future__ import annotations

from pyflow.environments.libraries import host_libraries, needed_names, on_host


def test_only_library_file_names_are_looked_up_on_the_host():
    assert on_host("libc.so.6") is not None
    for name in ("..", ".", "", "../../etc/shadow", "/etc/passwd", "x86_64-linux-gnu", "python3.11",
                 "libc.so.6/..", ".hidden.so"):
        assert on_host(name) is None, name


def test_the_libraries_an_extension_module_needs_are_found_from_its_elf_header(tmp_path):
    import glob
    import shutil
    module = sorted(glob.glob("/usr/lib/python3*/lib-dynload/_ctypes*.so"))[0]  # needs libffi
    shutil.copy(module, tmp_path / "_ctypes.so")
    (tmp_path / "notes.txt").write_text("not an ELF file")
    assert any("libffi" in name for name in needed_names(str(tmp_path / "_ctypes.so")))
    found = host_libraries(tmp_path)
    assert any("libffi" in path for path in found)
    assert all(path.startswith(("/lib", "/usr/lib")) for path in found)
