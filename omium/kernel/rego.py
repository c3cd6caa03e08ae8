"""regopy (rego-cpp), loaded so that it cannot corrupt other native libraries' heaps.

regopy's shared library exports its own ``operator new``/``delete`` (snmalloc). Whichever
extension first loads ``libstdc++`` decides where libstdc++'s own allocations go: when that is
regopy, libstdc++ binds to snmalloc, and a C++ library loaded afterwards (RocksDB in rocksdict)
frees memory with the allocator that did not allocate it ("double free or corruption", the
process aborts). Loading ``libstdc++`` into the global scope first makes every library, regopy
included, share glibc's allocator, whatever the import order. Import regopy only through here.
"""

import ctypes

ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)

from regopy import Bundle, Input, Interpreter, RegoError, rego_shared  # noqa: E402
from regopy.rego_shared import LogLevel  # noqa: E402

__all__ = ["Bundle", "Input", "Interpreter", "LogLevel", "RegoError", "rego_shared"]
