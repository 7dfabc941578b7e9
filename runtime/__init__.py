"""The shared runtime every service stands on: settings, errors, logging, metrics helpers,
backoff and fault points. It imports only `aop.core` and third-party libraries.
"""
