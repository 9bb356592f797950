"""Everything but the package list is in setup.cfg. The wheel carries the checkout's
top-level `models/` (the bundled model and its card) as the package `vsremaster.models`,
so an installed copy finds it inside itself; a checkout keeps one copy of the 16 MB file
where the project keeps its large files (`vsremaster.weights.bundled_dir`)."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["vsremaster", "vsremaster.*"]) + ["vsremaster.models"],
      package_dir={"vsremaster.models": "models"},
      package_data={"vsremaster": ["py.typed"],
                    "vsremaster.models": ["*.safetensors", "README.md"]})
