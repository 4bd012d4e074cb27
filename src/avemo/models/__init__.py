"""Networks built from typed configurations (audio, video, fusion) and the model file that carries them."""


class DoesNotFit(ValueError):
    """This configuration cannot take the input it is given (its blocks shrink it to nothing): a search prunes
    such a trial with this reason, where any other error fails the trial."""
