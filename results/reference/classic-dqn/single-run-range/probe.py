"""Experiment: which per-train()-call signal in a DQN LR ramp marks the grid's good LRs?"""
import json, math, sys, time
import numpy as np, torch
from stable_baselines3.common.callbacks import BaseCallback
from clr_rl.runner import RunConfig, prepare
from clr_rl.schedules import Exponential
from clr_rl.tuning import _range_model, single_resolution

env_id, timesteps, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
every = int(sys.argv[5]) if len(sys.argv) > 5 else 1
ramp = Exponential(1e-6, 1e-1)
res = single_resolution("dqn", env_id, timesteps)
prepared = prepare(RunConfig(algo="dqn", env_id=env_id, schedule=ramp, timesteps=res.timesteps, seed=seed))
env, model = _range_model(prepared, env_id, seed, "cpu")
rows = []
rng = np.random.default_rng(0)

class Watch(BaseCallback):
    n = 0; calls = 0; probe = None; q0 = None
    def qs(self):
        with torch.no_grad():
            return model.q_net(torch.as_tensor(self.probe)).numpy()
    def _on_rollout_start(self):
        if model._n_updates == self.n:
            return
        self.n = model._n_updates; self.calls += 1
        vals = model.logger.name_to_value
        row = {"t": self.num_timesteps, "lr": model.policy.optimizer.param_groups[0]["lr"],
               "loss": float(vals.get("train/loss", math.nan)),
               "ret": float(np.mean([e["r"] for e in model.ep_info_buffer])) if len(model.ep_info_buffer) else math.nan}
        if self.q0 is not None:
            q1 = self.qs()
            d = q1 - self.q0
            row.update(dq=float(np.sqrt((d ** 2).mean())), qrms=float(np.sqrt((self.q0 ** 2).mean())),
                       qspread=float(self.q0.std()), qmax=float(np.abs(q1).max()),
                       flip=float((q1.argmax(1) != self.q0.argmax(1)).mean()),
                       adv=float(np.abs(self.q0 - self.q0.mean(1, keepdims=True)).mean()))
            self.q0 = None
        rows.append(row)
        if self.calls % every == 0:
            buf = model.replay_buffer
            n = buf.buffer_size if buf.full else buf.pos
            idx = rng.integers(0, n, size=256)
            self.probe = buf.observations[idx, 0].astype(np.float32)
            self.q0 = self.qs()
    def _on_training_end(self):
        self._on_rollout_start()
    def _on_step(self):
        return True

t0 = time.time()
model.learn(res.timesteps, callback=Watch())
json.dump({"env": env_id, "seed": seed, "wall": time.time() - t0, "rows": rows}, open(out, "w"))
print(env_id, seed, len(rows), round(time.time() - t0, 1))
