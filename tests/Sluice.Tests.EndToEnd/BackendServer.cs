using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// A real backend: HTTP/1.0 on :8080 answering with its name, a stream server on
/// :9000 that sends its name and then echoes, and a UDP echo on :5353 prefixing its
/// name. Its sockets are created inside its network namespace.
/// </summary>
public sealed class BackendServer : IDisposable
{
    public const int HttpPort = 8080;
    public const int StreamPort = 9000;
    public const int UdpPort = 5353;

    private readonly CancellationTokenSource stop = new();
    private readonly List<Socket> sockets = [];
    private readonly Func<Func<Socket>, Socket> inNamespace;
    private Socket? streamListener;

    public BackendServer(string name, IPAddress address, Func<Func<Socket>, Socket> inNamespace)
    {
        Name = name;
        Address = address;
        this.inNamespace = inNamespace;
        var http = inNamespace(() => Listen(address, HttpPort));
        var stream = streamListener = inNamespace(() => Listen(address, StreamPort));
        var udp = inNamespace(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(address, UdpPort));
            return socket;
        });
        sockets.AddRange([http, stream, udp]);
        _ = AcceptLoop(http, ServeHttp);
        _ = AcceptLoop(stream, ServeStream);
        _ = ServeUdp(udp);
    }

    public string Name { get; }

    public IPAddress Address { get; }

    /// <summary>The status the HTTP server answers with (a health check may expect another).</summary>
    public int HttpStatus { get; set; } = 200;

    /// <summary>When set, UDP datagrams are received and never answered.</summary>
    public bool UdpSilent { get; set; }

    /// <summary>Where stream connections came from: the client, or the SNAT address and port.</summary>
    public System.Collections.Concurrent.ConcurrentBag<IPEndPoint> StreamPeers { get; } = [];

    /// <summary>Closes the stream listener: connections to :9000 are refused, open ones stay.</summary>
    public void StopListening()
    {
        streamListener?.Dispose();
        streamListener = null;
    }

    /// <summary>Listens on :9000 again after <see cref="StopListening"/>.</summary>
    public void ListenAgain()
    {
        var stream = streamListener = inNamespace(() => Listen(Address, StreamPort));
        sockets.Add(stream);
        _ = AcceptLoop(stream, ServeStream);
    }

    private static Socket Listen(IPAddress address, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(new IPEndPoint(address, port));
        socket.Listen(512);
        return socket;
    }

    private async Task AcceptLoop(Socket listener, Func<Socket, Task> serve)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stop.Token);
            }
            catch (Exception ex) when (stop.IsCancellationRequested || ex is ObjectDisposedException or SocketException) // stopped or closed
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                using (connection)
                {
                    try
                    {
                        await serve(connection);
                    }
                    catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
                    {
                        // the client went away: nothing to serve
                    }
                }
            });
        }
    }

    private async Task ServeHttp(Socket connection)
    {
        var buffer = new byte[4096];
        var request = new StringBuilder();
        while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await connection.ReceiveAsync(buffer, stop.Token);
            if (read == 0) return;
            request.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        var body = Name + "\n";
        var response = $"HTTP/1.1 {HttpStatus} {(HttpStatus == 200 ? "OK" : "Status")}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
        await connection.SendAsync(Encoding.ASCII.GetBytes(response), stop.Token);
        connection.Shutdown(SocketShutdown.Send);
    }

    private async Task ServeStream(Socket connection)
    {
        StreamPeers.Add((IPEndPoint)connection.RemoteEndPoint!);
        await connection.SendAsync(Encoding.ASCII.GetBytes(Name + "\n"), stop.Token);
        var buffer = new byte[65536];
        int read;
        while ((read = await connection.ReceiveAsync(buffer, stop.Token)) > 0)
        {
            await connection.SendAsync(buffer.AsMemory(0, read), stop.Token);
        }
    }

    private async Task ServeUdp(Socket socket)
    {
        var buffer = new byte[65536];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, any, stop.Token);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return;
            }
            if (UdpSilent)
            {
                continue;
            }
            var reply = Encoding.ASCII.GetBytes(Name + ":").Concat(buffer.Take(received.ReceivedBytes)).ToArray();
            await socket.SendToAsync(reply, received.RemoteEndPoint);
        }
    }

    public void Dispose()
    {
        stop.Cancel();
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
    }
}
