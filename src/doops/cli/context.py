"""What a command holds while it runs: the platform it acts on and how it shows the result."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from doops.cli.render import OutputOptions
from doops.platform import Platform


@dataclass
class Cli:
    platform: Platform
    output: OutputOptions = field(default_factory=OutputOptions)
    verbose: int = 0

    def close(self) -> None:
        self.platform.close()


def color_enabled(no_color_flag: bool) -> bool:
    return not no_color_flag and "NO_COLOR" not in os.environ
