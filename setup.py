"""Package discovery for the one importable package `provender`; the folder tree is the architecture
(docs/architecture.md):

- sdk/provender    -> provender           the SDK a bare `pip install provender` gives (and the generated protos)
- kernel           -> provender.kernel    the facts every part shares; imports no part
- services/<name>  -> provender.<name>    server (gRPC plumbing), core, serving, jobs, local (the laptop platform)

Everything else about the build (dependencies and the extras each part needs) is in pyproject.toml.
"""

from setuptools import find_packages, setup

SERVICES = ("server", "core", "serving", "jobs", "local")

package_dir = {"provender": "sdk/provender", "provender.kernel": "kernel"} | {
    f"provender.{s}": f"services/{s}" for s in SERVICES
}
packages = (
    find_packages("sdk")
    + ["provender.kernel", *(f"provender.kernel.{p}" for p in find_packages("kernel"))]
    + [f"provender.{p}" for p in find_packages("services")]
)

setup(package_dir=package_dir, packages=packages)
