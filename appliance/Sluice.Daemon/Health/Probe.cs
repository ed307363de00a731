using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Net.Sockets;
using System.Text;
using Sluice.Model.Services;

namespace Sluice.Daemon.Health;

/// <summary>
/// One health probe of one backend. Returns null when the backend answered as expected,
/// else why not. Probes leave from the appliance's own address on the backend's link
/// (the kernel's choice), never from a SNAT address: those ports belong to the datapath.
/// </summary>
public static class Probe
{
    public static async Task<string?> Run(HealthCheckDefinition check, IPEndPoint target, CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(check.TimeoutMs);
        try
        {
            return check.Type switch
            {
                "tcp" => await Tcp(target, timeout.Token),
                "http" or "https" => await Http(check, target, timeout.Token),
                "udp" => await Udp(check, target, timeout.Token),
                _ => $"unknown check type {check.Type}",
            };
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            return $"no answer within {check.TimeoutMs} ms";
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused",
                _ => ex.Message,
            };
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or AuthenticationException)
        {
            return ex.InnerException?.Message ?? ex.Message;
        }
    }

    private static async Task<string?> Tcp(IPEndPoint target, CancellationToken cancellation)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(target, cancellation);
        return null;
    }

    private static async Task<string?> Http(HealthCheckDefinition check, IPEndPoint target, CancellationToken cancellation)
    {
        // One connection per probe, to this backend's address whatever the Host says.
        using var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.Zero,
            UseProxy = false,
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(target, token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            // Backends behind a balancer commonly serve certificates for the VIP's name:
            // the probe checks that TLS and HTTP work, not who the certificate names.
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        var uri = new Uri($"{check.Type}://{target.Address}:{target.Port}{check.Path ?? "/"}");
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.UserAgent.ParseAdd("sluice-health-check");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellation);
        var (low, high) = check.StatusRange();
        var status = (int)response.StatusCode;
        return status >= low && status <= high ? null : $"HTTP {status}, expected {low}-{high}";
    }

    private static async Task<string?> Udp(HealthCheckDefinition check, IPEndPoint target, CancellationToken cancellation)
    {
        // Connected, so an ICMP port unreachable comes back as "connection refused".
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(target, cancellation);
        await socket.SendAsync(Encoding.UTF8.GetBytes(check.Payload ?? "ping"), cancellation);
        var buffer = new byte[2048];
        await socket.ReceiveAsync(buffer, cancellation);
        return null;
    }
}
