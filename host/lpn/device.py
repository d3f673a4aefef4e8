"""The host side of the serial protocol: talk to a learning device.

    with Device("socket://127.0.0.1:5555") as dev:     # or "/dev/ttyACM0"
        dev.info()                                      # sizes, model hash, free RAM
        dev.learn(x_q, t_q, task=0)                     # int16 vectors, already quantised
        cls, y = dev.predict(x_q, task=0)
        state = dev.get_state()                         # the model file's state block

The frames, codes and payload layouts all come from `lpn.protocol`. Every request
carries a sequence number; when a reply does not arrive in time, or the device
reports that the request arrived garbled, the same frame is sent again. The
device answers a repeated frame with the reply it already sent instead of running
the request twice, so a retried `learn` is still one learning step. A device that
refuses a request raises `DeviceError`, whose `name` is the status name of the
protocol's table (`"bad_length"`, `"task"`, ...).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import serial

from . import protocol as P

I16_MIN, I16_MAX = -32768, 32767
# A read returns after this long without data, so the reply deadline is checked often.
POLL = 0.01


class DeviceError(RuntimeError):
    """The device refused a request, or did not answer; `name` says why."""

    def __init__(self, command: str, name: str, code: int | None = None, detail: str = ""):
        self.command = command
        self.name = name
        self.code = code
        status = P.STATUS_BY_NAME.get(name)
        why = detail or (status.doc if status else name)
        super().__init__(f"{command}: {name}" + (f" ({code})" if code is not None else "") + f": {why}")


class DeviceTimeout(DeviceError):
    """No matching reply arrived, even after the retries."""


@dataclass(frozen=True)
class DeviceInfo:
    protocol_version: int
    firmware_version: str
    board: str
    model_hash: str          # hex, as lpn.modelfile.model_hash writes it
    inputs: int
    outputs: int
    tasks: int
    layers: int
    state_bytes: int
    synapses: int
    free_ram: int
    max_frame: int


@dataclass(frozen=True)
class LayerStats:
    budget: int
    loss_fast: int
    loss_slow: int


@dataclass(frozen=True)
class DeviceStats:
    step: int
    saturations: int
    seen: int
    task: int
    layers: tuple[LayerStats, ...]


class Device:
    """A learning device behind a serial port or a `socket://` URL.

    `timeout` is how long one attempt waits for its reply; `retries` is how many
    times a request is sent again after a lost or garbled exchange. The
    constructor opens the link and shakes hands (`hello`), unless `handshake` is
    False. `link` may be an already open pyserial object instead of a URL.
    """

    def __init__(self, url: str | None = None, *, timeout: float = 2.0, retries: int = 2,
                 baudrate: int = 115200, handshake: bool = True, link: Any = None):
        if (url is None) == (link is None):
            raise ValueError("give either a URL or an open link")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries non-negative")
        self.timeout = timeout
        self.retries = retries
        self.link = link if link is not None else serial.serial_for_url(url, baudrate=baudrate, timeout=POLL)
        self.link.timeout = POLL
        self._in_waiting_is_a_flag = type(self.link).__module__.endswith("protocol_socket")
        self.reader = P.FrameReader()
        self.max_frame = P.MAX_FRAME
        self._seq = os.urandom(1)[0]
        self._info: DeviceInfo | None = None
        self.link_counters = {"requests": 0, "resent": 0, "stale_replies": 0}
        try:
            self.link.reset_input_buffer()
            if handshake:
                self.hello()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ plumbing
    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def exchange(self, code: int, payload: bytes = b"", timeout: float | None = None,
                 name: str | None = None) -> P.Reply:
        """Send one request and return its reply (whatever its status)."""
        name = name or (P.BY_CODE[code].name if code in P.BY_CODE else f"0x{code:02x}")
        if P.REQUEST_HEADER + len(payload) + P.CRC_SIZE > self.max_frame:
            raise DeviceError(name, "oversized", detail=f"request of {len(payload)} payload bytes exceeds "
                                                        f"the device's frame limit of {self.max_frame}")
        seq = self._next_seq()
        # The leading delimiter ends whatever noise the device may have received
        # before, so this frame starts clean.
        wire = b"\x00" + P.request_frame(code, seq, payload)
        self.link_counters["requests"] += 1
        for attempt in range(self.retries + 1):
            if attempt:
                self.link_counters["resent"] += 1
            self._write(wire, name)
            reply = self._await(code, seq, timeout or self.timeout, name)
            if reply is None or reply.status_name in P.TRANSIENT:
                continue
            return reply
        raise DeviceTimeout(name, "timeout", detail=f"no reply after {self.retries + 1} attempt(s) "
                                                    f"of {timeout or self.timeout:g} s")

    def _write(self, data: bytes, name: str) -> None:
        try:
            self.link.write(data)
            self.link.flush()
        except serial.SerialException as e:
            raise DeviceError(name, "link", detail=str(e)) from e

    def _await(self, code: int, seq: int, timeout: float, name: str) -> P.Reply | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self._read_some()
            except serial.SerialException as e:
                raise DeviceError(name, "link", detail=str(e)) from e
            if not data:
                continue
            for body in self.reader.feed(data):
                try:
                    reply = P.parse_reply(body)
                except P.FramingError:
                    continue
                # A reply echoes cmd | REPLY_FLAG, so the flag bit of a request's code is lost.
                if reply.code == code & ~P.REPLY_FLAG and reply.seq == seq:
                    return reply
                self.link_counters["stale_replies"] += 1
        return None

    def _read_some(self) -> bytes:
        """What has arrived, waiting at most POLL for the first byte."""
        data = self.link.read(1)
        if not data:
            return data
        waiting = self.link.in_waiting
        if self._in_waiting_is_a_flag and waiting:
            # socket:// reports 0 or 1, not a count; a non-blocking read drains it.
            self.link.timeout = 0
            try:
                return data + self.link.read(65536)
            finally:
                self.link.timeout = POLL
        return data + (self.link.read(waiting) if waiting else b"")

    def request(self, name: str, values: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        """Run command `name` with its request fields; return its reply fields."""
        cmd = P.BY_NAME[name]
        dims = self._dims() if self._uses_sizes(cmd) else {}
        reply = self.exchange(cmd.code, P.pack(cmd.request, values or {}, dims), timeout, name)
        if reply.status != 0:
            raise DeviceError(name, reply.status_name, reply.status)
        try:
            return P.unpack(cmd.reply, reply.payload, dims)
        except ValueError as e:
            raise DeviceError(name, "bad_reply", detail=str(e)) from e

    @staticmethod
    def _uses_sizes(cmd: P.Command) -> bool:
        items = cmd.request + cmd.reply
        return any(isinstance(i, P.Group) or (isinstance(i.count, str) and i.count != P.REST) for i in items)

    def _dims(self) -> dict[str, int]:
        info = self._info or self.info()
        return {"inputs": info.inputs, "outputs": info.outputs, "layers": info.layers}

    def _vector(self, v: Any, n: int, what: str) -> list[int]:
        arr = np.asarray(v)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{what} must be integers (quantised), got {arr.dtype}")
        if arr.shape != (n,):
            raise ValueError(f"{what} must have shape ({n},), got {arr.shape}")
        if arr.size and (arr.min() < I16_MIN or arr.max() > I16_MAX):
            raise ValueError(f"{what} has values outside int16")
        return [int(e) for e in arr]

    # ------------------------------------------------------------ commands
    def hello(self) -> dict[str, int]:
        """Version handshake; learns the device's frame limit."""
        cmd = P.BY_NAME["hello"]
        reply = self.exchange(cmd.code, P.pack(cmd.request, {"host_version": P.VERSION}, {}), name="hello")
        values = P.unpack(cmd.reply, reply.payload, {}) if len(reply.payload) == P.payload_size(cmd.reply, {}) else {}
        if reply.status_name == "version":
            raise DeviceError("hello", "version", reply.status,
                              detail=f"the device speaks protocol version {values.get('protocol_version')}, "
                                     f"this host version {P.VERSION}")
        if reply.status != 0:
            raise DeviceError("hello", reply.status_name, reply.status)
        if not values:
            raise DeviceError("hello", "bad_reply", detail="reply payload has the wrong length")
        if values["max_frame"] < P.REQUEST_HEADER + P.CRC_SIZE + 1:
            raise DeviceError("hello", "bad_reply", detail=f"implausible max_frame {values['max_frame']}")
        self.max_frame = min(values["max_frame"], P.MAX_FRAME)
        return values

    def info(self) -> DeviceInfo:
        v = self.request("info")
        info = DeviceInfo(
            protocol_version=v["protocol_version"], firmware_version=v["firmware_version"], board=v["board"],
            model_hash=v["model_hash"].hex(), inputs=v["inputs"], outputs=v["outputs"], tasks=v["tasks"],
            layers=v["layers"], state_bytes=v["state_bytes"], synapses=v["synapses"], free_ram=v["free_ram"],
            max_frame=v["max_frame"])
        self._info = info
        return info

    def stats(self) -> DeviceStats:
        v = self.request("stats")
        return DeviceStats(step=v["step"], saturations=v["saturations"], seen=v["seen"], task=v["task"],
                           layers=tuple(LayerStats(**r) for r in v["layer"]))

    def predict(self, x_q: Sequence[int], task: int | None = None) -> tuple[int, np.ndarray]:
        """(class, outputs): the class is the argmax over the task's outputs (all if task is None)."""
        d = self._dims()
        t = P.ALL_TASKS if task is None else int(task)
        v = self.request("predict", {"task": t, "x": self._vector(x_q, d["inputs"], "x")})
        return v["class"], np.asarray(v["y"], dtype=np.int16)

    def learn(self, x_q: Sequence[int], t_q: Sequence[int], task: int = 0) -> None:
        d = self._dims()
        self.request("learn", {"task": int(task), "x": self._vector(x_q, d["inputs"], "x"),
                               "t": self._vector(t_q, d["outputs"], "target")})

    def contrast(self, x_q: Sequence[int]) -> None:
        self.request("contrast", {"x": self._vector(x_q, self._dims()["inputs"], "x")})

    def consolidate(self) -> None:
        self.request("consolidate")

    def replay(self, count: int = 1) -> None:
        if not 0 <= int(count) <= 0xFFFF:
            raise ValueError(f"replay count must be in 0..65535, got {count}")
        self.request("replay", {"count": int(count)})

    def structural(self) -> None:
        self.request("structural")

    def reset(self) -> None:
        self.request("reset")

    def save(self, timeout: float | None = None) -> None:
        """Store the state in the device's persistent storage (power-loss safe)."""
        self.request("save", timeout=timeout)

    def load(self, timeout: float | None = None) -> None:
        """Replace the state with the newest complete saved one."""
        self.request("load", timeout=timeout)

    def storage(self) -> dict[str, int]:
        """The storage's figures: present, boot_status (a status code), capacity, saves."""
        return self.request("storage")

    def _chunk_room(self, command: str) -> int:
        cmd = P.BY_NAME[command]
        header = P.REPLY_HEADER if command == "get_state" else P.REQUEST_HEADER
        items = cmd.reply if command == "get_state" else cmd.request
        return self.max_frame - header - P.CRC_SIZE - P.payload_size(items, {}, 0)

    def get_state(self) -> bytes:
        """The device's whole state, pulled in chunks from one consistent snapshot."""
        room = min(self._chunk_room("get_state"), 0xFFFF)
        data = bytearray()
        total, crc = None, None
        while total is None or len(data) < total:
            v = self.request("get_state", {"offset": len(data), "length": room})
            if total is None:
                total, crc = v["total"], v["crc"]
            elif (v["total"], v["crc"]) != (total, crc):
                raise DeviceError("get_state", "out_of_order", detail="the snapshot changed during the download")
            if not v["data"] and len(data) < total:
                raise DeviceError("get_state", "bad_reply", detail=f"empty chunk at offset {len(data)} of {total}")
            data += v["data"]
        if len(data) != total or P.crc32(bytes(data)) != crc:
            raise DeviceError("get_state", "state_crc", detail="downloaded state does not match the device's CRC")
        return bytes(data)

    def put_state(self, state: bytes, commit_timeout: float | None = None) -> None:
        """Upload a whole state; the device imports it only once all of it arrived intact."""
        state = bytes(state)
        room = self._chunk_room("put_state_chunk")
        self.request("put_state_begin", {"total": len(state), "crc": P.crc32(state)})
        for offset in range(0, len(state), room):
            self.request("put_state_chunk", {"offset": offset, "data": state[offset:offset + room]})
        self.request("put_state_commit", timeout=commit_timeout)
