"""Running a fit: the LightningCLI wiring, callbacks, checkpoint IO, resuming a run, the run's
summary, and `debug-data`."""
