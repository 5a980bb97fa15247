"""avself: self-supervised audio-visual representation learning in JAX/Flax."""

import setuptools

# jax is pinned to the series the multi-process (gloo) and 8-fake-device paths
# are tested on; the rest are lower bounds known to work together with
# NumPy >= 2. tensorflow-io is deliberately absent (see README).
INSTALL_REQUIRES = [
    "jax[cpu]>=0.10.2,<0.11",
    "flax>=0.12.8,<0.13",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8,<0.13",
    "tensorflow-cpu>=2.21,<2.22",
    "tensorflow-datasets>=4.9.10",
    "importlib_resources",  # tensorflow-datasets 4.9 imports it but does not declare it.
    "tensorboard>=2.21",
    "ml-collections>=1.1.0",
    "clu>=0.0.12",
    "av>=18.0",
    "numpy>=2.0",
    "scipy>=1.11",
    "scikit-learn>=1.5",
    "pillow>=10.0",
    "tqdm>=4.60",
    "absl-py>=2.0",
    # bss_eval's SDR / SIR / SAR (evaluators/separation.py); 0.1.4 is run
    # with its conjugate-gradient solver under NumPy 2.
    "fast-bss-eval>=0.1.4",
    # Sonorization's mel filterbank and its inverse (Griffin-Lim): the
    # parametric waveform (avself/synthesis.py).
    "librosa>=0.10",
]

setuptools.setup(
    name="avself",
    version="0.1.0",
    description="Self-supervised audio-visual learning (L3-Net, AVE-Net, Multisensory) in JAX/Flax.",
    packages=setuptools.find_packages(include=["avself", "avself.*"]),
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": [
            "pytest>=8.0",
            "pytest-xdist>=3.5",
            "mir_eval>=0.8",  # the reference bss_eval the tests compare with
            "pyink==26.5.1",
            "ruff==0.17.6",
        ],
        # libtpu: avself.compile compiles for TPU slices on any machine.
        "tpu": ["jax[tpu]>=0.10.2,<0.11"],
    },
)
