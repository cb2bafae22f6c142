"""numpy's linear algebra through the OpenBLAS it vendors in numpy.libs ($ORIGIN run path)."""

import numpy as np

a = np.array([[3.0, 1.0], [1.0, 2.0]])
x = np.linalg.solve(a, np.array([9.0, 8.0]))
m = np.arange(1.0, 401.0).reshape(20, 20) % 7 + np.eye(20)
blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
print(f"numpy {np.__version__} ({blas}): solve {x.round(6).tolist()} det {np.linalg.det(a):.6f}")
print(f"matmul trace {np.trace(m @ m.T):.1f}")
