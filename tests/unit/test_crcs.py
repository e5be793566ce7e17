"""How runctl.crcs loads its CRC-32C function (the CRC math is tested in test_digests)."""

from __future__ import annotations

import subprocess
import sys


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
