"""The facts every part of Provender shares, in one place each: typed errors, value types, timestamps, Redis
URLs, the online store's layout and write rule, the wire encoders, and the job contract. The kernel imports no
part (SDK, server, Core, Serving, jobs, local) and needs only the base install."""

# The release, as every part reports it (GetFeastCoreVersion, Serving's GetFeastServingInfo, the CLI); the same
# number as pyproject.toml's version.
__version__ = "0.1.0"
