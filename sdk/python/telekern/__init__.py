"""Python client for telekernd.

The build generates the protobuf and gRPC modules (telekern.<area>.v1.<area>_pb2
and _pb2_grpc) next to this file; Client wraps a channel with credentials,
default deadlines and retries.
"""

from telekern.client import Client, ClientError

__all__ = ["Client", "ClientError"]
