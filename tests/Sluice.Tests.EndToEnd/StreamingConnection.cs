using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// One long-lived TCP connection through the VIP to an echo backend, streaming chunks
/// of known content and checking every echoed byte, until told to stop. Any reset,
/// stall or corrupted byte ends it with a recorded failure.
/// </summary>
public sealed class StreamingConnection : IDisposable
{
    private const int ChunkSize = 4096;
    private readonly Socket socket;
    private long echoed;

    private StreamingConnection(Socket socket, string backend)
    {
        this.socket = socket;
        Backend = backend;
    }

    public string Backend { get; }

    public long Sent { get; private set; }

    public long Echoed => Interlocked.Read(ref echoed);

    public Exception? Failure { get; private set; }

    /// <summary>Bounded wait until every connection has echoed another 64 KiB, or fail naming the stuck ones.</summary>
    public static async Task EveryOneProgresses(IReadOnlyList<StreamingConnection> connections, string when)
    {
        var start = connections.Select(c => c.Echoed).ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (connections.Select((c, i) => c.Echoed - start[i] >= 64 * 1024).All(done => done))
            {
                return;
            }
            var failed = connections.FirstOrDefault(c => c.Failure is not null);
            Assert.True(failed is null, $"{when}: a connection to {failed?.Backend} failed: {failed?.Failure}");
            await Task.Delay(50);
        }
        var stuck = connections.Where((c, i) => c.Echoed - start[i] < 64 * 1024).Select(c => c.Backend).ToList();
        Assert.Fail($"{when}: {stuck.Count} connection(s) made no progress within 20 s ({string.Join(", ", stuck.Distinct())})");
    }

    public static async Task<StreamingConnection> Open(Socket socket, IPEndPoint vip, CancellationToken token)
    {
        await socket.ConnectAsync(vip, token);
        var banner = new StringBuilder();
        var one = new byte[1];
        while (await socket.ReceiveAsync(one, token) == 1 && one[0] != '\n')
        {
            banner.Append((char)one[0]);
        }
        return new StreamingConnection(socket, banner.ToString());
    }

    /// <summary>Streams until <paramref name="stop"/>; each round trip must finish within the bound.</summary>
    public async Task Stream(int id, CancellationToken stop)
    {
        var chunk = new byte[ChunkSize];
        var back = new byte[ChunkSize];
        try
        {
            for (long sequence = 0; !stop.IsCancellationRequested; sequence++)
            {
                for (var i = 0; i < ChunkSize; i++)
                {
                    chunk[i] = (byte)(id * 31 + sequence * 7 + i);
                }
                using var roundTrip = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await socket.SendAsync(chunk, roundTrip.Token);
                Sent += ChunkSize;
                var read = 0;
                while (read < ChunkSize)
                {
                    var n = await socket.ReceiveAsync(back.AsMemory(read), roundTrip.Token);
                    if (n == 0)
                    {
                        throw new IOException("the connection was closed by the other side");
                    }
                    read += n;
                }
                if (!back.AsSpan().SequenceEqual(chunk))
                {
                    throw new InvalidDataException($"echoed bytes differ in chunk {sequence}");
                }
                Interlocked.Add(ref echoed, ChunkSize);
            }
        }
        catch (Exception ex)
        {
            Failure = ex;
        }
    }

    public void Dispose() => socket.Dispose();
}
