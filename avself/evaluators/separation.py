"""Held-out on/off-screen separation: SDR, SIR and SAR against the true sources.

Mixtures come from the task's `mixture` mode on the evaluation split with a
fixed seed, centre crops and no gain jitter, so every mixture brings its true
on- and off-screen waveforms: this works on any prepared records. Estimates
are the model's spectrograms turned into waveforms with the mixture's phase
(`tasks/separation.resynthesize`); the metrics are bss_eval's (Vincent et
al. 2006: 512-tap distortion filter, the v3 definitions mir_eval implements)
as computed by fast-bss-eval (`bss_eval`), on the mono mix of each signal,
one mixture at a time (references: true on, true off; estimates: predicted
on, predicted off, in that order).

Reported beside the model, on the same mixtures:
  mixture/*      the mixture itself as both estimates (the floor);
  best_perm_*    the model's on-screen SDR under the better of the two
                 output orders: separation quality when the order is not
                 asked for (the PIT u-net's number to compare);
  assignment_accuracy: how often the fixed order (output 0 = on screen) is
                 the better one: 0.5 for a net that cannot tell.
The audio-only PIT u-net and the AV net from random-init video features are
runs of their own (configs/separation_synthetic.py variants), scored by this
evaluator on the same mixtures (same seed and split).

A mixture whose on- or off-screen source is (near) silent has no defined
SDR: it is skipped and counted (`skipped_silent`).
"""

import os
from typing import Optional

import fast_bss_eval
import jax
import numpy as np
from absl import logging

from avself import pictures
from avself import sharding
from avself.evaluators import summed

# Sources quieter than this RMS (digital silence) have no defined SDR.
SILENT_RMS = 1e-5
# Conjugate-gradient iterations for the distortion filters: fast-bss-eval
# 0.1.4's direct solver fails under numpy 2 (np.linalg.solve no longer takes
# a stack of vectors); 100 iterations agree with mir_eval's bss_eval_sources
# to within 0.1 dB on tonal test signals (tests/test_separation.py).
CG_ITERATIONS = 100


def bss_eval(references: np.ndarray, estimates: np.ndarray) -> dict:
  """references, estimates [K, 2, n] -> {sdr, sir, sar} [K, 2] in dB (source order kept)."""
  sdr, sir, sar = fast_bss_eval.bss_eval_sources(
      np.asarray(references, np.float64),
      np.asarray(estimates, np.float64),
      compute_permutation=False,
      use_cg_iter=CG_ITERATIONS,
  )
  return {"sdr": sdr, "sir": sir, "sar": sar}


def separation_scores(
    on: np.ndarray, off: np.ndarray, est_on: np.ndarray, est_off: np.ndarray
) -> dict:
  """Waveforms [K, n] -> per-mixture on_/off_ sdr, sir, sar and the swapped on_sdr [K]."""
  refs = np.stack([on, off], axis=1)
  kept = bss_eval(refs, np.stack([est_on, est_off], axis=1))
  if np.array_equal(est_on, est_off):  # the mixture baseline: no order
    swapped = kept
  else:
    swapped = bss_eval(refs, np.stack([est_off, est_on], axis=1))
  out = {}
  for name, values in kept.items():
    out[f"on_{name}"], out[f"off_{name}"] = values[:, 0], values[:, 1]
  out["swapped_on_sdr"] = swapped["sdr"][:, 0]
  out["kept_mean_sdr"] = kept["sdr"].mean(axis=1)
  out["swapped_mean_sdr"] = swapped["sdr"].mean(axis=1)
  return out


def spectrogram_panels(rows: list, size: int = 64) -> np.ndarray:
  """Rows of log-spectrograms [F, T] -> one uint8 picture, a row per mixture.

  Each row: mixture, true on, estimated on, true off, estimated off, all
  scaled to the row's mixture range, low pitch at the bottom.
  """
  tiles = []
  for row in rows:
    lo, hi = float(np.min(row[0])), float(np.max(row[0]))
    scaled = [np.clip((r - lo) / max(hi - lo, 1e-6), 0, 1) for r in row]
    tiles.append(
        pictures.tile_row(
            [
                pictures.resize(pictures.colormap(s[::-1]), size, size)
                for s in scaled
            ]
        )
    )
  return np.concatenate(tiles, axis=0)


def _predict(params, model_state, batch, *, task, model):
  """Estimated waveforms [B, n, C] and log-magnitudes [B, F, T] of a batch."""
  out, _ = task.forward(
      model, {"params": params, **model_state}, batch, train=False
  )
  mix = batch["mixture_waveform"]
  return {
      "est_on": task.resynthesize(out["on_screen"], mix, model),
      "est_off": task.resynthesize(out["off_screen"], mix, model),
      **{
          k: out[k][..., 0]
          for k in (
              "mixture",
              "on_screen",
              "off_screen",
              "true_on_screen",
              "true_off_screen",
          )
      },
  }


class Evaluator(summed.SummedEvaluator):
  """SDR / SIR / SAR of the model and of the mixture baseline on held-out mixtures.

  Attributes (from eval_config): num_examples (rounded up to whole global
  batches), split (default config.data.eval_split), seed (default 1234),
  num_images (mixtures shown as spectrogram panels; 0: none), picture_dir
  ('' = `workdir/pictures` when given a workdir, else no PNG). Batches and
  the jitted step are the summed evaluators'; the bss_eval runs on the host.
  """

  default_num_examples = 256

  def __init__(
      self,
      config,
      eval_config,
      *,
      task,
      model,
      mesh,
      workdir: Optional[str] = None,
  ):
    super().__init__(
        config,
        eval_config,
        task=task,
        model=model,
        mesh=mesh,
        eval_step=_predict,
    )
    self.num_images = int(eval_config.get("num_images", 4))
    self.picture_dir = eval_config.get("picture_dir") or (
        os.path.join(workdir, "pictures") if workdir else ""
    )

  def predictions(self, state) -> dict:
    """Mono waveforms [K, n] (true and estimated) and the first spectrograms."""
    keep = {k: [] for k in ("on", "off", "mix", "est_on", "est_off")}
    spectra = None
    for local in self._batches():
      global_batch = sharding.to_global(local, self.mesh)
      out = sharding.to_host(
          self._step(state.params, state.model_state, global_batch)
      )
      truth = sharding.to_host(
          {
              k: global_batch[f"{k}_waveform"]
              for k in ("on_screen", "off_screen", "mixture")
          }
      )
      for name, value in (
          ("on", truth["on_screen"]),
          ("off", truth["off_screen"]),
          ("mix", truth["mixture"]),
          ("est_on", out["est_on"]),
          ("est_off", out["est_off"]),
      ):
        keep[name].append(np.mean(np.asarray(value, np.float64), axis=-1))
      if spectra is None:
        spectra = {
            k: np.asarray(v)
            for k, v in out.items()
            if k not in ("est_on", "est_off")
        }
    return {k: np.concatenate(v) for k, v in keep.items()}, spectra

  def run(self, state):
    """Yields (metric, value) pairs and the spectrogram panels."""
    waves, spectra = self.predictions(state)

    def rms(x):
      return np.sqrt(np.mean(x**2, axis=-1))

    ok = (rms(waves["on"]) > SILENT_RMS) & (rms(waves["off"]) > SILENT_RMS)
    w = {k: v[ok] for k, v in waves.items()}
    yield "num_examples", float(ok.sum())
    yield "skipped_silent", float((~ok).sum())
    if not ok.any():
      return
    model = separation_scores(w["on"], w["off"], w["est_on"], w["est_off"])
    mixture = separation_scores(w["on"], w["off"], w["mix"], w["mix"])
    for name in (
        "on_sdr",
        "on_sir",
        "on_sar",
        "off_sdr",
        "off_sir",
        "off_sar",
    ):
      yield name, float(np.mean(model[name]))
      yield f"mixture/{name}", float(np.mean(mixture[name]))
    yield "median_on_sdr", float(np.median(model["on_sdr"]))
    yield "best_perm_on_sdr", float(
        np.mean(
            np.where(
                model["kept_mean_sdr"] >= model["swapped_mean_sdr"],
                model["on_sdr"],
                model["swapped_on_sdr"],
            )
        )
    )
    yield "assignment_accuracy", float(
        np.mean(model["kept_mean_sdr"] >= model["swapped_mean_sdr"])
    )
    yield "on_sdr_gain_over_mixture", float(
        np.mean(model["on_sdr"] - mixture["on_sdr"])
    )
    if self.num_images and spectra is not None:
      count = min(self.num_images, len(spectra["mixture"]))
      picture = spectrogram_panels(
          [
              [
                  spectra[k][i]
                  for k in (
                      "mixture",
                      "true_on_screen",
                      "on_screen",
                      "true_off_screen",
                      "off_screen",
                  )
              ]
              for i in range(count)
          ]
      )
      if self.picture_dir and jax.process_index() == 0:
        path = os.path.join(
            self.picture_dir, f"separation_step_{int(state.step)}.png"
        )
        pictures.save_png(picture, path)
        logging.info("Separation picture: %s", path)
      yield "spectrograms", picture
