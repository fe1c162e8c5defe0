"""Canonical accelerator names and the aliases used by provider catalogs.

The spec figures (TFLOPS, bandwidth, ...) live in ``pricing_data/gpus.yaml`` with their
sources; this module only fixes *names* so that every offering, server SKU and refresh
script agrees on them. Add a model here and in ``gpus.yaml`` together (a test checks
that both lists match).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CANONICAL_ACCELERATORS",
    "UnknownAcceleratorError",
    "normalize_accelerator_name",
]

#: canonical name -> accelerator kind
CANONICAL_ACCELERATORS: Final[dict[str, str]] = {
    # NVIDIA data-center GPUs (training class)
    "B300": "gpu",
    "B200": "gpu",
    "GH200": "gpu",
    "H200": "gpu",
    "H100": "gpu",  # H100 SXM5 80 GB
    "H100-PCIe": "gpu",  # H100 PCIe 80 GB
    "H100-NVL": "gpu",  # H100 NVL 94 GB (Azure NC H100 v5)
    "A100-40GB": "gpu",  # A100 40 GB (SXM4 or PCIe: same dense TFLOPS)
    "A100-80GB": "gpu",  # A100 80 GB (SXM4 or PCIe)
    "V100-16GB": "gpu",
    "V100-32GB": "gpu",
    "P100": "gpu",
    "K80": "gpu",
    # NVIDIA inference / graphics GPUs
    "RTX-PRO-6000": "gpu",  # RTX PRO 6000 Blackwell Server Edition
    "L40S": "gpu",
    "L4": "gpu",
    "A10G": "gpu",
    "A10": "gpu",
    "RTX-A6000": "gpu",
    "Quadro-RTX-6000": "gpu",
    "T4": "gpu",
    "P4": "gpu",
    "M60": "gpu",
    # AMD GPUs
    "Radeon-Pro-V520": "gpu",
    "Radeon-Instinct-MI25": "gpu",
    # Google TPUs (count = chips)
    "TPU-v2": "tpu",
    "TPU-v3": "tpu",
    "TPU-v4": "tpu",
    "TPU-v5e": "tpu",
    "TPU-v5p": "tpu",
    "TPU-v6e": "tpu",
    # AWS Neuron devices
    "Inferentia": "neuron",
    "Inferentia2": "neuron",
    "Trainium": "neuron",
    "Trainium2": "neuron",
    # Habana
    "Gaudi-HL-205": "hpu",
    # FPGAs
    "Xilinx-VU9P": "fpga",
    "Xilinx-VU47P": "fpga",
}

# Raw provider names (lower-cased) -> canonical. Names that need the instance type to be
# resolved (H100 SXM vs PCIe vs NVL, A100 PCIe vs SXM) are resolved by the provider
# adapters in ``app.catalog.build`` which then pass the canonical name.
_ALIASES: Final[dict[str, str]] = {
    "b300": "B300",
    "b200": "B200",
    "gh200": "GH200",
    "h200": "H200",
    "h100": "H100",
    "h100-mega": "H100",  # GCP a3-megagpu: same H100 SXM 80GB, more NICs
    "h100-80gb": "H100",
    "h100-pcie": "H100-PCIe",
    "h100-nvl": "H100-NVL",
    "a100": "A100-40GB",
    "a100-40gb": "A100-40GB",
    "a100-80gb": "A100-80GB",
    "v100": "V100-16GB",
    "v100-16gb": "V100-16GB",
    "v100-32gb": "V100-32GB",
    "p100": "P100",
    "k80": "K80",
    "rtxpro6000": "RTX-PRO-6000",
    "rtx pro server 6000": "RTX-PRO-6000",
    "rtx-pro-6000": "RTX-PRO-6000",
    "l40s": "L40S",
    "l4": "L4",
    "a10g": "A10G",
    "a10": "A10",
    "a6000": "RTX-A6000",
    "rtx-a6000": "RTX-A6000",
    "rtx6000": "Quadro-RTX-6000",
    "quadro-rtx-6000": "Quadro-RTX-6000",
    "t4": "T4",
    "t4g": "T4",  # AWS g5g: T4G Tensor Core GPU = T4 on a Graviton host
    "p4": "P4",
    "m60": "M60",
    "radeon pro v520": "Radeon-Pro-V520",
    "radeon-pro-v520": "Radeon-Pro-V520",
    "radeon mi25": "Radeon-Instinct-MI25",
    "radeon-instinct-mi25": "Radeon-Instinct-MI25",
    "inferentia": "Inferentia",
    "inferentia2": "Inferentia2",
    "trainium": "Trainium",
    "trainium2": "Trainium2",
    "gaudi hl-205": "Gaudi-HL-205",
    "gaudi-hl-205": "Gaudi-HL-205",
    "virtex ultrascale (vu9p)": "Xilinx-VU9P",
    "xilinx-vu9p": "Xilinx-VU9P",
    "virtex ultrascale+ (vu47p)": "Xilinx-VU47P",
    "xilinx-vu47p": "Xilinx-VU47P",
}
_ALIASES.update({name.lower(): name for name in CANONICAL_ACCELERATORS})


class UnknownAcceleratorError(ValueError):
    """Raised for a raw accelerator name with no canonical mapping."""


def normalize_accelerator_name(raw: str) -> str:
    """Map a provider's accelerator name to the canonical name (case-insensitive).

    >>> normalize_accelerator_name("V100-32GB")
    'V100-32GB'
    >>> normalize_accelerator_name("A100")
    'A100-40GB'
    """
    key = raw.strip().lower()
    if key.startswith("tpu-"):
        # 'tpu-v5litepod-8' -> TPU-v5e, 'tpu-v6e-4' -> TPU-v6e (count handled by caller)
        generation = key.split("-")[1]
        generation = {"v5litepod": "v5e"}.get(generation, generation)
        name = f"TPU-{generation}"
        if name in CANONICAL_ACCELERATORS:
            return name
    try:
        return _ALIASES[key]
    except KeyError:
        raise UnknownAcceleratorError(f"unknown accelerator name {raw!r}") from None
