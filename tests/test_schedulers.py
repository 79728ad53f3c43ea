"""DDPM, DDIM and DPM-Solver++(2M) schedulers: the forward process, set_timesteps, and steps that invert it exactly."""

from __future__ import annotations

import math

import pytest
import torch

from aigc.errors import AigcError
from aigc.schedulers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from aigc.schedulers.common import make_betas


def test_linear_betas_match_the_ddpm_paper():
    betas = make_betas("linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    alpha_bar = torch.cumprod(1 - betas, 0)
    assert alpha_bar[-1].item() == pytest.approx(4.04e-5, rel=0.01)  # x_T is almost pure noise


def test_cosine_alpha_bar_follows_the_formula():
    scheduler = DDPMScheduler(1000, "cosine")
    s, t = 0.008, 500
    f = lambda u: math.cos((u / 1000 + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    assert scheduler.alphas_cumprod[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-6)


def test_add_noise_is_the_closed_form_forward_process():
    scheduler = DDPMScheduler(1000)
    clean, noise = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    timesteps = torch.tensor([0, 999])
    noisy = scheduler.add_noise(clean, noise, timesteps)
    for i, t in enumerate(timesteps):
        a = scheduler.alphas_cumprod[t].item()
        torch.testing.assert_close(noisy[i], math.sqrt(a) * clean[i] + math.sqrt(1 - a) * noise[i])
    with pytest.raises(AigcError, match="timesteps must lie"):
        scheduler.add_noise(clean, noise, torch.tensor([0, 1000]))


def test_set_timesteps_spaces_evenly_and_ends_at_zero():
    scheduler = DDIMScheduler(1000)
    scheduler.set_timesteps(10)
    assert scheduler.timesteps.tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    scheduler.set_timesteps(1000)
    assert scheduler.timesteps[0] == 999 and scheduler.timesteps[-1] == 0 and len(scheduler.timesteps) == 1000
    for bad in (0, 1001):
        with pytest.raises(AigcError, match="sample_steps"):
            scheduler.set_timesteps(bad)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_ddim_with_the_true_noise_recovers_the_image_in_one_step(prediction):
    """Given the exact epsilon (or v) of x_t, predict x_0 exactly: the prediction algebra is right."""
    scheduler = DDIMScheduler(1000, prediction_type=prediction, clip_sample=False)
    clean = torch.rand(3, 1, 5, 5) * 2 - 1
    noise = torch.randn_like(clean)
    scheduler.set_timesteps(1)
    t = int(scheduler.timesteps[0])
    noisy = scheduler.add_noise(clean, noise, torch.full((3,), t))
    output = scheduler.training_target(clean, noise, torch.full((3,), t))
    result = scheduler.step(output, t, noisy)
    torch.testing.assert_close(result.pred_original_sample, clean, atol=2e-4, rtol=0)
    torch.testing.assert_close(result.prev_sample, clean, atol=2e-4, rtol=0)


def test_ddim_steps_with_an_oracle_land_on_the_image_for_any_step_count():
    """An oracle that knows x_0 gives eps = (x_t - sqrt(ab) x_0) / sqrt(1 - ab); deterministic DDIM must
    then follow the path to x_0 exactly, whatever the number of steps."""
    clean = torch.rand(2, 1, 4, 4) * 2 - 1
    for steps in (1, 10, 50):
        scheduler = DDIMScheduler(1000)
        scheduler.set_timesteps(steps)
        sample = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
        for t in scheduler.timesteps:
            a = scheduler.alphas_cumprod[int(t)].item()
            eps = (sample - math.sqrt(a) * clean) / math.sqrt(1 - a)
            sample = scheduler.step(eps, int(t), sample).prev_sample
        torch.testing.assert_close(sample, clean, atol=1e-4, rtol=0)


def test_ddpm_step_matches_the_posterior_of_the_paper():
    """One full-length DDPM step: mean (eq. 7) and variance beta_tilde, checked against hand computation."""
    scheduler = DDPMScheduler(1000, clip_sample=False)
    scheduler.set_timesteps(1000)
    t = 500
    sample, eps, z = torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2)
    beta = scheduler.betas[t].item()
    a_bar, a_bar_prev = scheduler.alphas_cumprod[t].item(), scheduler.alphas_cumprod[t - 1].item()
    # Ho et al. 2020, Algorithm 2: x_{t-1} = 1/sqrt(alpha) (x_t - beta / sqrt(1 - a_bar) eps) + sigma z
    mean = (sample - beta / math.sqrt(1 - a_bar) * eps) / math.sqrt(1 - beta)
    sigma = math.sqrt((1 - a_bar_prev) / (1 - a_bar) * beta)
    result = scheduler.step(eps, t, sample, noise=z)
    torch.testing.assert_close(result.prev_sample, mean + sigma * z, atol=1e-5, rtol=1e-5)
    # the last step adds no noise
    last = scheduler.step(eps, 0, sample, noise=z).prev_sample
    assert torch.equal(last, scheduler.step(eps, 0, sample, noise=torch.zeros_like(z)).prev_sample)


def test_ddim_with_eta_one_uses_the_ddpm_variance_and_eta_zero_none():
    ddim = DDIMScheduler(1000, eta=1.0, clip_sample=False)
    ddim.set_timesteps(1000)
    sample, eps = torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2)
    a = ddim.step(eps, 500, sample, noise=torch.zeros_like(sample)).prev_sample
    b = ddim.step(eps, 500, sample, noise=torch.ones_like(sample)).prev_sample
    beta = ddim.betas[500].item()
    a_bar, a_bar_prev = ddim.alphas_cumprod[500].item(), ddim.alphas_cumprod[499].item()
    expected_sigma = math.sqrt((1 - a_bar_prev) / (1 - a_bar) * beta)
    torch.testing.assert_close((b - a).mean().item(), expected_sigma, atol=1e-6, rtol=1e-5)
    deterministic = DDIMScheduler(1000)
    deterministic.set_timesteps(10)
    x = deterministic.step(eps, 999, sample, noise=torch.ones_like(sample)).prev_sample
    assert torch.equal(x, deterministic.step(eps, 999, sample).prev_sample)
    with pytest.raises(AigcError, match="eta"):
        DDIMScheduler(1000, eta=1.5)


def test_a_timestep_that_was_not_chosen_is_an_error():
    scheduler = DDIMScheduler(1000)
    scheduler.set_timesteps(10)
    with pytest.raises(AigcError, match="not one of the chosen"):
        scheduler.step(torch.zeros(1, 1, 2, 2), 500, torch.zeros(1, 1, 2, 2))


# ------------------------------------------------------------------------------------- DPM-Solver++(2M)


def _lambda(scheduler, t: int) -> float:
    a = scheduler.alphas_cumprod[t].item()
    return 0.5 * math.log(a / (1 - a))


def test_dpm_solver_first_step_is_ddim_and_second_uses_the_2m_formula():
    """Lu et al. 2022, Algorithm 2, by hand: step 1 is first order (equal to DDIM), step 2 combines the
    last two x_0 estimates with r = h_prev / h; with a constant x_0 estimate both orders agree."""
    dpm, ddim = DPMSolverMultistepScheduler(1000, clip_sample=False), DDIMScheduler(1000, clip_sample=False)
    dpm.set_timesteps(10)
    ddim.set_timesteps(10)
    sample, eps1, eps2 = torch.randn(1, 1, 3, 3), torch.randn(1, 1, 3, 3), torch.randn(1, 1, 3, 3)
    first = dpm.step(eps1, 999, sample)
    torch.testing.assert_close(first.prev_sample, ddim.step(eps1, 999, sample).prev_sample, atol=1e-5, rtol=1e-5)

    x = first.prev_sample
    second = dpm.step(eps2, 899, x)
    a = {t: dpm.alphas_cumprod[t].item() for t in (999, 899, 799)}
    d_prev = (sample - math.sqrt(1 - a[999]) * eps1) / math.sqrt(a[999])  # x_0 estimates
    d_now = (x - math.sqrt(1 - a[899]) * eps2) / math.sqrt(a[899])
    h_prev, h = _lambda(dpm, 899) - _lambda(dpm, 999), _lambda(dpm, 799) - _lambda(dpm, 899)
    r = h_prev / h
    d = (1 + 1 / (2 * r)) * d_now - 1 / (2 * r) * d_prev
    expected = math.sqrt(1 - a[799]) / math.sqrt(1 - a[899]) * x - math.sqrt(a[799]) * (math.exp(-h) - 1) * d
    torch.testing.assert_close(second.prev_sample, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(second.pred_original_sample, d_now, atol=1e-5, rtol=1e-5)


def test_dpm_solver_with_an_oracle_lands_on_the_image_and_starts_over_each_run():
    clean = torch.rand(2, 1, 4, 4) * 2 - 1
    scheduler = DPMSolverMultistepScheduler(1000)
    for steps in (1, 10, 15, 10):  # the repeat: a second run with the same object is not polluted by the first
        scheduler.set_timesteps(steps)
        sample = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
        for t in scheduler.timesteps:
            a = scheduler.alphas_cumprod[int(t)].item()
            sample = scheduler.step((sample - math.sqrt(a) * clean) / math.sqrt(1 - a), int(t), sample).prev_sample
        torch.testing.assert_close(sample, clean, atol=1e-4, rtol=0)


def test_dpm_solver_is_registered_and_deterministic():
    from aigc.schedulers import SCHEDULERS

    assert SCHEDULERS.get("dpmpp-2m") is DPMSolverMultistepScheduler
    scheduler = DPMSolverMultistepScheduler(1000)
    scheduler.set_timesteps(5)
    sample, eps = torch.randn(1, 1, 2, 2), torch.randn(1, 1, 2, 2)
    assert torch.equal(scheduler.step(eps, 999, sample, noise=torch.ones_like(sample)).prev_sample, scheduler.step(eps, 999, sample).prev_sample)
