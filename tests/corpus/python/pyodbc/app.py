"""pyodbc from its manylinux wheel: the extension links the system's libodbc.so.2 (unixODBC),
and connecting to a data source nobody configured is answered by unixODBC's driver manager."""

import pyodbc

print(f"pyodbc {pyodbc.version}, drivers {pyodbc.drivers()}")
try:
    pyodbc.connect("DSN=binpack-corpus", timeout=1)
except pyodbc.Error as e:
    state, message = e.args[0], e.args[1]
    print(f"connect refused: {state} {message.split(' (0)')[0]}")
