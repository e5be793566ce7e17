"""How runctl.crcs loads its CRC-32C function (the CRC math is tested in test_digests)."""

from __future__ import annotations

import subprocess
import sys

from runctl import crcs


def test_the_crc32c_function_loads_without_the_package_init() -> None:
    """The C function comes without crc32c's __init__, which reads the package's version
    through importlib.metadata (~20 ms of a large download), and gives the package's
    values: the check value of "123456789", and the same CRC as the package on random data."""
    code = (
        "import os, sys; from runctl.crcs import crc32c_update; data = os.urandom(100_003); "
        "mine = crc32c_update(data, 0), crc32c_update(b'123456789', 0); "
        "loaded = {'crc32c', 'importlib.metadata'} & set(sys.modules); assert not loaded, loaded; "
        "import crc32c; assert mine == (crc32c.crc32c(data), 0xE3069283), mine"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_extension_that_is_not_there_leaves_the_choice_to_the_package() -> None:
    """No such module, no such package, or no such function: None, and the caller then
    imports the package as before."""
    assert crcs._extension_function("crc32c", "_not_a_module", "crc32c") is None
    assert crcs._extension_function("runctl_no_such_package", "_crc32c", "crc32c") is None
    assert crcs._extension_function("crc32c", "_crc32c", "no_such_function") is None
    assert crcs._extension_function("crc32c", "_crc32c", "crc32c") is not None
