from tests.pki.fixtures import pki  # noqa: F401  (the test PKI, served over loopback)
