"""Drives a running telekernd from Python (started by the C++ test driver,
which passes its address and credentials in the environment)."""

import os
import sys
import unittest

import grpc

from telekern import Client, ClientError
from telekern.kernel.v1 import kernel_pb2
from telekern.testing.v1 import echo_pb2, echo_pb2_grpc


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.client = Client(api_key=os.environ["VIEWER_KEY"])
        self.client.wait_until_ready(timeout=10)

    def tearDown(self):
        self.client.close()

    def test_api_key_and_typed_stubs(self):
        info = self.client.kernel.GetInfo(kernel_pb2.GetInfoRequest())
        self.assertEqual(info.grpc_address, os.environ["TELEKERN_ADDR"])
        self.assertTrue(info.auth_enabled)
        names = [m.name for m in self.client.kernel.ListModules(kernel_pb2.ListModulesRequest()).modules]
        self.assertIn("echo", names)

    def test_no_credentials_is_unauthenticated(self):
        with Client(api_key="", token="") as anonymous:
            with self.assertRaises(grpc.RpcError) as raised:
                anonymous.kernel.GetInfo(kernel_pb2.GetInfoRequest())
            self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_login_keeps_the_token(self):
        with Client(api_key="") as client:
            with self.assertRaises(ClientError) as raised:
                client.login("alice", "wrong")
            self.assertEqual(raised.exception.code, grpc.StatusCode.UNAUTHENTICATED)
            token = client.login("alice", "wonderland")
            self.assertTrue(token)
            loaded = client.kernel.LoadModule(kernel_pb2.LoadModuleRequest(name="ping"))
            self.assertEqual(loaded.result.module.name, "ping")
            client.kernel.UnloadModule(kernel_pb2.UnloadModuleRequest(name="ping"))

    def test_server_streaming(self):
        echo = self.client.stub(echo_pb2_grpc.EchoStub)
        replies = list(echo.Count(echo_pb2.CountRequest(count=4, interval_ms=1), timeout=10))
        self.assertEqual([r.done for r in replies], [1, 2, 3, 4])
        self.assertEqual(replies[-1].total, 4)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
