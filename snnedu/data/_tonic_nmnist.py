"""tonic's N-MNIST reader, made to look for its files without downloading unless asked (imports tonic).

``tonic.datasets.NMNIST`` downloads whenever its check of the files fails, and that check wants the
zip archive and at least 10,000 ``.bin`` files. :class:`NMNIST` here reads the same layout
(``save_to/NMNIST/{Train,Test}/<digit>/*.bin``, the label is the folder's digit) with tonic's own
reader, accepts any number of files (a partial copy, the offline stand-in), and downloads only with
``allow_download=True``.
"""
from __future__ import annotations

from pathlib import Path

from tonic.datasets import NMNIST as _TonicNMNIST

__all__ = ["NMNIST"]


class NMNIST(_TonicNMNIST):
    """tonic's ``NMNIST`` reading local files; a download only when allowed. (Named ``NMNIST`` like
    tonic's class, since tonic's folder is ``save_to/<class name>``.)

    Args:
        save_to (str): the folder that holds ``NMNIST/`` (tonic's ``save_to``).
        train (bool): the training split (``Train/``) or the test split (``Test/``) (default ``True``).
        allow_download (bool): when the split's files are missing, download them with tonic (default
            ``False``: raise ``FileNotFoundError`` instead).
        first_saccade_only (bool): tonic's option: only the events of the first saccade (default ``False``).
    """

    def __init__(self, save_to: str, train: bool = True, allow_download: bool = False,
                 first_saccade_only: bool = False):
        self._allow_download = bool(allow_download)
        super().__init__(save_to, train=train, first_saccade_only=bool(first_saccade_only))

    def _split_folder(self) -> Path:
        return Path(self.location_on_system, self.folder_name)

    def _check_exists(self) -> bool:
        return any(self._split_folder().glob("[0-9]/*.bin"))

    def download(self) -> None:
        if not self._allow_download:
            raise FileNotFoundError(f"no N-MNIST files {self._split_folder()}/<digit>/*.bin")
        super().download()
        if not self._check_exists():
            raise FileNotFoundError(f"the download left no N-MNIST files {self._split_folder()}/<digit>/*.bin")
