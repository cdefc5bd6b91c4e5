"""Why a record could not be normalised."""


class RecordError(ValueError):
    """One record is unusable; the message is the reason kept in quarantine.

    Expected per-record rejections raise this; any other exception is a bug,
    which the pipeline also quarantines but logs with its traceback.
    """
