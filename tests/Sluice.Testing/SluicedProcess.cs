using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;

namespace Sluice.Testing;

/// <summary>
/// The real sluiced, started as a process inside a test's network namespace with a
/// config the test wrote. Talks to its API from inside that namespace (the API listens
/// on the namespace's loopback). Stopped by PID with the signal the test chooses.
/// </summary>
public sealed class SluicedProcess : IDisposable
{
    private readonly string netns;
    private readonly NamespaceThread thread;
    private Process? process;

    public SluicedProcess(string netns, string directory, string configYaml, int apiPort = 9080)
    {
        this.netns = netns;
        Directory = directory;
        ApiPort = apiPort;
        ConfigPath = Path.Combine(directory, "sluice.yaml");
        File.WriteAllText(ConfigPath, configYaml);
        thread = new NamespaceThread(netns);
    }

    public string Directory { get; }

    public string ConfigPath { get; }

    public int ApiPort { get; }

    public string LogPath => Path.Combine(Directory, "sluiced.log");

    public string TokenPath => Path.Combine(Directory, "api.token");

    public int Pid => process?.Id ?? 0;

    public static string DaemonDll => Repository.Binary("Sluice.Daemon", "sluiced.dll");

    public static string CliDll => Repository.Binary("Sluice.Cli", "sluicectl.dll");

    /// <summary>Starts sluiced (optionally wrapped, e.g. by unshare) and waits, bounded, until /readyz answers.</summary>
    public void Start(IReadOnlyList<string>? wrapper = null, IReadOnlyDictionary<string, string>? environment = null, bool waitReady = true)
    {
        var start = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { $"--net=/run/netns/{netns}" }.Concat(wrapper ?? []).Concat(["dotnet", DaemonDll, "--config", ConfigPath]))
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        process = Process.Start(start)!;
        var log = new StreamWriter(LogPath, append: true) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (waitReady)
        {
            WaitReady();
        }
    }

    public void WaitReady(TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            if (process!.HasExited)
            {
                throw new InvalidOperationException($"sluiced exited with {process.ExitCode}:\n{Log()}");
            }
            try
            {
                using var client = Client(authenticated: false);
                if (client.GetAsync("/readyz").GetAwaiter().GetResult().IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            Thread.Sleep(100);
        }
        throw new TimeoutException($"sluiced was not ready within the bound:\n{Log()}");
    }

    /// <summary>Sends a signal to sluiced (by its PID) and, for SIGTERM/SIGKILL, waits for it to exit.</summary>
    public int Signal(int signal, TimeSpan? exitWithin = null)
    {
        if (process is null || process.HasExited)
        {
            return process?.ExitCode ?? 0;
        }
        Tmds.Linux.LibC.kill(process.Id, signal);
        if (signal is 1 /* SIGHUP */)
        {
            return 0;
        }
        if (!process.WaitForExit(exitWithin ?? TimeSpan.FromSeconds(30)))
        {
            process.Kill();
            throw new TimeoutException("sluiced did not exit after the signal");
        }
        process.WaitForExit();
        return process.ExitCode;
    }

    /// <summary>Waits, bounded, for sluiced to exit by itself; returns its exit code.</summary>
    public int WaitForExit(TimeSpan within)
    {
        if (!process!.WaitForExit(within))
        {
            throw new TimeoutException($"sluiced did not exit within {within}:\n{Log()}");
        }
        process.WaitForExit();
        return process.ExitCode;
    }

    public const int SIGHUP = 1;
    public const int SIGTERM = 15;

    public string Log() => File.Exists(LogPath) ? File.ReadAllText(LogPath) : "";

    /// <summary>An HTTP client whose connections are made inside the namespace.</summary>
    public HttpClient Client(bool authenticated = true, int? port = null)
    {
        var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                var socket = thread.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port ?? ApiPort}"),
            Timeout = TimeSpan.FromSeconds(30),
        };
        if (authenticated)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(TokenPath).Trim());
        }
        return client;
    }

    /// <summary>The Prometheus listener (metrics.listen defaults to 127.0.0.1:9091).</summary>
    public HttpClient MetricsClient(int port = 9091) => Client(authenticated: false, port);

    /// <summary>Runs sluicectl inside the namespace; returns its exit code and output.</summary>
    public (int ExitCode, string Output) Ctl(params string[] arguments) =>
        Command.TryRun("nsenter", [$"--net=/run/netns/{netns}", "dotnet", CliDll, "--config", ConfigPath, .. arguments]);

    public void Dispose()
    {
        if (process is { HasExited: false })
        {
            Signal(SIGTERM);
        }
        process?.Dispose();
        thread.Dispose();
    }
}
