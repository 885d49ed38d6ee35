"""The synthetic market's vocabulary: makes and models per body type, paint colours, dealers.

Plain data, so the generator's choices are easy to read and to change.
"""

from __future__ import annotations

# make, model pairs per body type (the listing's declared body type matches the rendered car)
MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    "sedan": (("Toyota", "Camry"), ("Mazda", "6"), ("Honda", "Accord"), ("BMW", "3 Series"), ("Kia", "Cerato")),
    "hatch": (("Toyota", "Corolla"), ("Mazda", "3"), ("Volkswagen", "Golf"), ("Hyundai", "i30"), ("Honda", "Jazz")),
    "wagon": (("Skoda", "Octavia"), ("Volkswagen", "Passat"), ("Subaru", "Levorg"), ("Volvo", "V60")),
    "suv": (
        ("Toyota", "RAV4"), ("Mazda", "CX-5"), ("Hyundai", "Tucson"), ("Kia", "Sportage"), ("Mitsubishi", "Outlander"),
    ),
    "ute": (("Toyota", "HiLux"), ("Ford", "Ranger"), ("Isuzu", "D-Max"), ("Mitsubishi", "Triton")),
    "van": (("Toyota", "HiAce"), ("Hyundai", "Staria"), ("Ford", "Transit"), ("Volkswagen", "Transporter")),
    "coupe": (("Ford", "Mustang"), ("Toyota", "86"), ("BMW", "4 Series"), ("Nissan", "Z")),
}

# share of listings per body type (the synthetic market's mix)
BODY_MIX: dict[str, float] = {
    "suv": 0.30, "hatch": 0.20, "sedan": 0.15, "ute": 0.15, "wagon": 0.07, "van": 0.06, "coupe": 0.07,
}

# paint colours (RGB) with their share of cars
PAINTS: tuple[tuple[tuple[int, int, int], float], ...] = (
    ((236, 236, 232), 0.22),  # white
    ((25, 25, 28), 0.14),  # black
    ((150, 153, 158), 0.16),  # silver
    ((85, 88, 92), 0.12),  # grey
    ((30, 60, 130), 0.09),  # blue
    ((160, 25, 30), 0.09),  # red
    ((40, 90, 60), 0.04),  # green
    ((200, 160, 40), 0.03),  # yellow/gold
    ((210, 110, 30), 0.03),  # orange
    ((120, 85, 60), 0.04),  # bronze
    ((95, 140, 190), 0.04),  # light blue
)

# interior trim colours (RGB)
TRIMS: tuple[tuple[int, int, int], ...] = (
    (32, 32, 34), (48, 46, 44), (70, 70, 72), (150, 130, 105), (95, 60, 40), (190, 175, 150),
)

DEALER_WORDS = (
    "Metro", "Bayside", "Northern", "City", "Coastal", "Valley", "Premier", "Summit", "Harbour", "Southern",
    "Eastside", "Westgate", "Capital", "Highway", "Parkside",
)
DEALER_SUFFIX = ("Motors", "Auto Group", "Cars", "Autos", "Car Sales", "Motor Co")
BANNER_SLOGANS = ("DRIVE AWAY", "SALE", "NEW ARRIVAL", "FINANCE AVAILABLE", "LOW KMS", "1 OWNER", "WARRANTY")
