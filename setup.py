"""Package discovery for the one importable package `provender`.

The SDK lives in sdk/provender and each service in services/<name>, installed as provender.<name>
(ARCHITECTURE.md). Everything else about the build is in pyproject.toml.
"""

from setuptools import find_packages, setup

SERVICES = ("core", "serving", "jobs")

package_dir = {"provender": "sdk/provender"} | {f"provender.{s}": f"services/{s}" for s in SERVICES}
packages = find_packages("sdk") + [f"provender.{p}" for p in find_packages("services")]

setup(package_dir=package_dir, packages=packages)
