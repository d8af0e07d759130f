"""A TCP forwarder for tests/hosts/multi_host.sh: librdkafka's mock cluster listens
and advertises on 127.0.0.1 only, which the agents' namespaces cannot reach. The
scenario runs one of these in the master's namespace (its bridge address -> the mock's
loopback port) and one in each agent's namespace (loopback port -> the master's bridge
address), so the address the mock advertises leads to it from every host.

Usage: python3 forward.py LISTEN_HOST PORT TARGET_HOST [TARGET_PORT]
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(listen_host, port, target_host, target_port):
    async def handle(client_reader, client_writer):
        try:
            reader, writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))

    server = await asyncio.start_server(handle, listen_host, port)
    print(f"forwarding {listen_host}:{port} -> {target_host}:{target_port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, port, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    target_port = int(sys.argv[4]) if len(sys.argv) > 4 else port
    asyncio.run(main(host, port, target, target_port))
