"""The root error of the pipeline's I/O layers; `aop` turns it into one line and exit code 2."""


class AopError(Exception):
    """Raised for a failure an operator can act on; the message says what and, where known, how."""


class SettingsError(AopError, ValueError):
    """Raised when a setting has a bad value; the message names the environment variable."""


class RpcUnavailableError(AopError):
    """Raised when a Solana JSON-RPC call fails in a way worth retrying: no answer (network,
    timeout), an HTTP or JSON-RPC error answer (e.g. "node is behind"), an answer that does
    not parse, or data the node does not have yet. The caller backs off and retries."""
