"""A thin client for telekernd: one channel carrying credentials (API key or
JWT, optional TLS), a default deadline and retries of UNAVAILABLE calls."""

import json
import os

import grpc


class ClientError(Exception):
    """A failed call, with the gRPC status code and the server's message."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class _Defaults(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the client's credentials, and its default deadline to unary calls."""

    def __init__(self, client):
        self._client = client

    def _details(self, details, unary):
        metadata = list(details.metadata or [])
        names = {key for key, _ in metadata}
        header = self._client._auth_header()
        if header and "authorization" not in names and "x-api-key" not in names:
            metadata.append(header)
        timeout = details.timeout
        if timeout is None and unary and self._client.timeout:
            timeout = self._client.timeout
        return _CallDetails(details.method, timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details, True), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details, False), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details, True), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details, False), requests)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def _read(path):
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


class Client:
    """Connects to telekernd.

    client = Client("127.0.0.1:7070", api_key="...")
    info = client.kernel.GetInfo(kernel_pb2.GetInfoRequest())
    echo = client.stub(echo_pb2_grpc.EchoStub)

    Arguments default to TELEKERN_ADDR, TELEKERN_API_KEY and TELEKERN_TOKEN.
    """

    def __init__(self, target=None, api_key=None, token=None, tls=False, ca_file=None,
                 cert_file=None, key_file=None, timeout=30.0, max_attempts=4):
        self.target = target or os.environ.get("TELEKERN_ADDR") or "127.0.0.1:7070"
        self.api_key = api_key if api_key is not None else os.environ.get("TELEKERN_API_KEY", "")
        self.token = token if token is not None else os.environ.get("TELEKERN_TOKEN", "")
        self.timeout = timeout
        options = []
        if max_attempts and max_attempts > 1:
            config = {"methodConfig": [{
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": min(int(max_attempts), 5),
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }]}
            options += [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]
        if tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file), private_key=_read(key_file),
                certificate_chain=_read(cert_file))
            raw = grpc.secure_channel(self.target, credentials, options=options)
        else:
            raw = grpc.insecure_channel(self.target, options=options)
        self._raw_channel = raw
        self.channel = grpc.intercept_channel(raw, _Defaults(self))

    def _auth_header(self):
        if self.token:
            return ("authorization", "Bearer " + self.token)
        if self.api_key:
            return ("x-api-key", self.api_key)
        return None

    def stub(self, stub_class):
        """A generated stub (e.g. echo_pb2_grpc.EchoStub) on this client's channel."""
        return stub_class(self.channel)

    @property
    def kernel(self):
        from telekern.kernel.v1 import kernel_pb2_grpc
        return kernel_pb2_grpc.KernelStub(self.channel)

    def login(self, user, password):
        """Kernel/Login: keeps the returned JWT for every later call and returns it."""
        from telekern.kernel.v1 import kernel_pb2
        try:
            response = self.kernel.Login(kernel_pb2.LoginRequest(user=user, password=password))
        except grpc.RpcError as error:
            raise ClientError(error.code(), error.details()) from None
        self.token = response.token
        return response.token

    def wait_until_ready(self, timeout=30.0):
        """Blocks until the channel connects; raises ClientError after timeout seconds."""
        try:
            grpc.channel_ready_future(self._raw_channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise ClientError(grpc.StatusCode.UNAVAILABLE,
                              f"telekernd at {self.target} did not answer within {timeout}s") from None

    def close(self):
        self._raw_channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
