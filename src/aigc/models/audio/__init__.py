"""Audio families: WaveGAN and SpecGAN (GANs on waveforms and on log-mel spectrograms), the audio VAE."""
