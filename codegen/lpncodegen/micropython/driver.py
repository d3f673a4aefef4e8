# Runs under MicroPython: replays an operation stream on a generated LPN module.
#
#   micropython driver.py trace MODULE OPS TRACE STATE
#       apply every op; write to TRACE the outputs of each predict and an 8-byte
#       SHA-256 prefix of the state after each op; write the final state to STATE.
#   micropython driver.py bench MODULE OPS REPEAT
#       time the ops (learn and predict only) and print one line of figures.
#
# OPS is the binary stream of lpncodegen.micropython.harness.encode.
import sys
from array import array

mode, name, ops_path = sys.argv[1], sys.argv[2], sys.argv[3]
mod = __import__(name)
net = mod.LPN()
N0 = mod.N_INPUTS
NL = mod.N_OUTPUTS


def read_ops(f):
    ops = []  # type: list
    while True:
        code = f.read(1)
        if not code:
            return ops
        x = t = None
        arg = 0
        if code == b"L":
            x = array("h", f.read(2 * N0))
            t = array("h", f.read(2 * NL))
            arg = f.read(1)[0]
        elif code == b"C" or code == b"P":
            x = array("h", f.read(2 * N0))
        elif code == b"R":
            arg = f.read(1)[0]
        ops.append((code, x, t, arg))


def apply(code, x, t, arg):
    if code == b"L":
        net.learn(x, t, arg)
    elif code == b"C":
        net.contrast(x)
    elif code == b"K":
        net.consolidate()
    elif code == b"R":
        net.replay(arg)
    elif code == b"S":
        net.structural()
    elif code == b"P":
        return net.predict(x)
    else:
        raise ValueError("unknown op %r" % code)
    return None


with open(ops_path, "rb") as f:
    ops = read_ops(f)

if mode == "trace":
    import hashlib
    with open(sys.argv[4], "wb") as out:
        for code, x, t, arg in ops:
            y = apply(code, x, t, arg)
            if y is not None:
                out.write(y)
            out.write(hashlib.sha256(net.state_bytes()).digest()[:8])
    with open(sys.argv[5], "wb") as out:
        out.write(net.state_bytes())
elif mode == "bench":
    import time
    repeat = int(sys.argv[4])
    learns = [op for op in ops if op[0] == b"L"]
    predicts = [op for op in ops if op[0] == b"P"]
    state = net.state_bytes()
    best_learn = best_predict = 1 << 60
    for _ in range(repeat):
        net.load_state_bytes(state)
        t0 = time.ticks_us()
        for code, x, t, arg in learns:
            net.learn(x, t, arg)
        t1 = time.ticks_us()
        for code, x, t, arg in predicts:
            net.predict(x)
        t2 = time.ticks_us()
        dl, dp = time.ticks_diff(t1, t0), time.ticks_diff(t2, t1)
        best_learn = min(best_learn, dl)
        best_predict = min(best_predict, dp)
    print("learn_us", best_learn / len(learns), "predict_us", best_predict / max(1, len(predicts)),
          "learns", len(learns), "predicts", len(predicts), "repeat", repeat)
else:
    raise ValueError("mode must be trace or bench")
