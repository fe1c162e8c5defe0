"""Legal jurisdictions shared by the price catalog (regions, sites) and the requirements."""

from __future__ import annotations

from typing import Literal

Jurisdiction = Literal[
    "US",
    "CA",
    "BR",
    "CL",
    "EU",
    "UK",
    "CH",
    "NO",
    "JP",
    "KR",
    "TW",
    "HK",
    "SG",
    "IN",
    "ID",
    "AU",
    "IL",
    "AE",
    "SA",
    "QA",
    "BH",
    "ZA",
    "MX",
    "CN",
    "MY",
    "TH",
    "NZ",
]
"""Legal jurisdiction of a region: ISO-3166 alpha-2 country code, except ``EU`` for EU
member states (GDPR) and ``UK`` for the United Kingdom."""
