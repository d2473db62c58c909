from platformio.public import PlatformBase


class RtmbdebianPlatform(PlatformBase):
    """Every toolchain comes from the system (apt), so there are no packages to install."""
