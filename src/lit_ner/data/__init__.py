"""Where sentences come from and how they become batches: the LightningDataModule, the sources
(files, the packaged WNUT-17, the Hub), label alignment, sampling and augmentation."""
