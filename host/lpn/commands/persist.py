"""`lpn save URL` and `lpn load URL`: the device's persistent storage.

A device with storage (EEPROM or flash on a board, a host file in the emulator:
`lpn emulate --storage FILE`) keeps its learnt state across a power cycle: `save`
stores it in the spare one of two slots, power-loss safe (docs/persistence.md),
and the firmware loads the newest complete slot at boot. `load` restores it
without a restart, e.g. to undo learning since the last save.
"""
from __future__ import annotations

import time

import click

from .. import protocol as P
from .device import DEFAULT_TIMEOUT, device_errors, open_device
from .lifecycle import LPNError, _console

# A save or load moves the whole state through the storage: give it longer than one reply.
STORAGE_TIMEOUT = 30.0


def _timeout_option():
    return click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
                        show_default=True, help="Seconds to wait for each reply (save and load get at least "
                                                f"{STORAGE_TIMEOUT:g}).")


def _storage_of(dev) -> dict:
    """The storage figures, or a clear error for a firmware that cannot say."""
    from ..device import DeviceError
    try:
        return dev.storage()
    except DeviceError as exc:
        if exc.name == "unsupported":
            raise LPNError("the device's firmware has no persistent storage") from exc
        raise


def _run(url: str, timeout: float, action: str) -> tuple[float, dict]:
    from ..device import DeviceError
    with open_device(url, timeout) as dev:
        storage = _storage_of(dev)
        if not storage["present"]:
            raise LPNError("the device has no persistent storage (in the emulator: "
                           "`lpn emulate --storage FILE`)")
        started = time.monotonic()
        try:
            getattr(dev, action)(timeout=max(timeout, STORAGE_TIMEOUT))
        except DeviceError as exc:
            status = P.STATUS_BY_NAME.get(exc.name)
            meaning = f": {status.doc}" if status is not None else ""
            raise LPNError(f"{action} failed with `{exc.name}`{meaning}") from exc
        seconds = time.monotonic() - started
        return seconds, dev.storage()


@click.command()
@click.argument("url")
@_timeout_option()
@device_errors
def save(url: str, timeout: float) -> None:
    """Store the learnt state of the device at URL in its persistent storage."""
    seconds, storage = _run(url, timeout, "save")
    _console().print(f"saved in {seconds:.2f} s ({storage['saves']} saves since boot, "
                     f"room for {storage['capacity']} state bytes)")


@click.command()
@click.argument("url")
@_timeout_option()
@device_errors
def load(url: str, timeout: float) -> None:
    """Replace the state of the device at URL with its newest saved state."""
    seconds, storage = _run(url, timeout, "load")
    boot = P.status_name(storage["boot_status"])
    _console().print(f"loaded the saved state in {seconds:.2f} s (at boot: "
                     f"{'restored' if storage['boot_status'] == 0 else boot})")
