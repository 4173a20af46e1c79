"""ament_python package that also installs with plain pip (no ROS needed to import it)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dejavu_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/models", glob("models/*.safetensors") + glob("models/*.json") + glob("models/*.md")),
        (f"share/{PACKAGE}/models/candidates", glob("models/candidates/*")),  # trained, not the default
    ],
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "safetensors>=0.4",
        "rosbags>=0.10",
        "rosbags-image>=0.9",
        "pyyaml>=6",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "scipy>=1.10",
    ],
    extras_require={
        "test": ["pytest>=7", "tensorboard>=2.14", "onnx>=1.15", "onnxruntime>=1.17", "openvino>=2024.0",
                 "faiss-cpu>=1.7"],
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
        "openvino": ["onnx>=1.15", "openvino>=2024.0"],
        "faiss": ["faiss-cpu>=1.7"],
    },
    zip_safe=True,
    maintainer="dejavu_ros developers",
    maintainer_email="dejavu-ros@users.noreply.github.com",
    description="Seasonal relocalization with Deja-Vu features and contextual similarity for ROS 2",
    license="MIT",
    entry_points={
        "console_scripts": [
            "relocalizer = dejavu_ros.ros.relocalizer_node:main",
            "dejavu-ros = dejavu_ros.cli.main:main",
        ],
    },
)
