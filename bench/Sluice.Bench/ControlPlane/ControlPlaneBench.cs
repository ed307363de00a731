using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Sluice.Bench.Reporting;
using Sluice.Testing;

namespace Sluice.Bench.ControlPlane;

/// <summary>
/// Part 4: from request to programmed datapath. sluiced answers a PUT only after the maps
/// hold the change, so a request's latency is the time to programmed. Bulk loads go
/// through a config reload (SIGHUP) and through sequential API calls; one change at scale
/// is a PUT against a daemon already holding the other services. Compared with
/// iptables-restore of the same services in kube-proxy's layout and nft -f of a verdict
/// map. Also the daemon's resident memory with the most services.
/// </summary>
public static class ControlPlaneBench
{
    private const int Backends = 10;

    public static async Task<PartResult> Run(bool quick, Action<string> log)
    {
        var started = DateTimeOffset.UtcNow;
        int[] counts = quick ? [1, 100] : [1, 1_000, 10_000];
        var changes = quick ? 20 : 200;
        var measurements = new List<Measurement>();
        var notes = new List<string> { $"{Backends} backends per service; one change = a PUT changing one API-owned service's backend weight, {changes} times" };
        foreach (var count in counts)
        {
            log($"control-plane: {count:N0} service(s) x {Backends} backends");
            using var netns = new TestNamespace("cpbench");
            Command.Run("ip", "-netns", netns.Name, "link", "add", "lb0", "type", "veth", "peer", "name", "lb1");
            Command.Run("ip", "-netns", netns.Name, "link", "set", "lb0", "up");
            Command.Run("ip", "-netns", netns.Name, "link", "set", "lb1", "up");
            var directory = Directory.CreateTempSubdirectory("sluice-cpbench-").FullName;
            var pin = $"/sys/fs/bpf/sluice-cpbench-{Guid.NewGuid():N}";
            try
            {
                var header = $"""
                    datapath:
                      interfaces: [lb0]
                      attachMode: generic
                      snatAddresses: [198.18.200.1]
                      pinPath: {pin}
                      flowTableSize: 65536
                      maxServices: {count + 1_100}
                      maxBackends: {(count + 1_100) * Backends}
                    api:
                      listen: 127.0.0.1:9080
                      tokenFile: {directory}/api.token
                    stateDirectory: {directory}/state
                    """;
                using var daemon = new SluicedProcess(netns.Name, directory, header + "\n");
                daemon.Start();
                using var api = daemon.Client();

                // Bulk through the config file: write, SIGHUP, wait until all are programmed.
                await File.WriteAllTextAsync(daemon.ConfigPath, header + "\nservices:\n" + ConfigServices(count));
                var reload = Stopwatch.StartNew();
                daemon.Signal(SluicedProcess.SIGHUP, exitWithin: TimeSpan.Zero);
                while (!(await api.GetAsync($"/api/v1/services/s{count - 1}")).IsSuccessStatusCode)
                {
                    if (reload.Elapsed > TimeSpan.FromMinutes(5)) throw new TimeoutException("config reload did not finish in 5 minutes");
                    await Task.Delay(5);
                }
                var reloadSeconds = reload.Elapsed.TotalSeconds;
                measurements.Add(new("control-plane", "sluiced: config reload (SIGHUP) to programmed", $"{count}", reloadSeconds, "s",
                    "includes reading and validating the YAML file"));
                // The reconciler's own figure for that reload: the maps' part, without the YAML.
                var programmed = System.Text.RegularExpressions.Regex.Matches(daemon.Log(), $@"reconciled: {count} service\(s\) programmed, 0 removed in ([0-9.]+) ms");
                if (programmed.Count > 0)
                {
                    var ms = double.Parse(programmed[^1].Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                    measurements.Add(new("control-plane", "sluiced: programming the maps (reconciler's log)", $"{count}", ms / 1000, "s"));
                    log($"  reload: {reloadSeconds:F3} s, of which programming {ms / 1000:F3} s");
                }

                // One change at this scale, through the API.
                var latencies = new List<double>();
                await Put(api, "probe", Service(count + 1, weight: 1));
                for (var i = 0; i < changes; i++)
                {
                    var watch = Stopwatch.StartNew();
                    await Put(api, "probe", Service(count + 1, weight: 2 + (i % 5)));
                    latencies.Add(watch.Elapsed.TotalMilliseconds);
                }
                measurements.Add(new("control-plane", "sluiced: one change via API, p50", $"{count}", Percentile(latencies, 50), "ms"));
                measurements.Add(new("control-plane", "sluiced: one change via API, p99", $"{count}", Percentile(latencies, 99), "ms"));
                log($"  one change: p50 {Percentile(latencies, 50):F2} ms, p99 {Percentile(latencies, 99):F2} ms");
                measurements.Add(new("control-plane", "sluiced: resident memory", $"{count}", Rss(daemon.Pid) / 1048576.0, "MiB"));

                // Bulk through the API: one PUT per service, sequentially (at most 1,000).
                var apiCount = Math.Min(count, 1_000);
                var bulk = Stopwatch.StartNew();
                for (var s = 0; s < apiCount; s++)
                {
                    await Put(api, $"api{s}", Service(count + 2 + s, weight: 1));
                }
                measurements.Add(new("control-plane", "sluiced: sequential API PUTs to programmed, per service", $"{count}", bulk.Elapsed.TotalMilliseconds / apiCount, "ms",
                    $"{apiCount} PUTs on top of {count} services"));
            }
            finally
            {
                Sluice.Datapath.Loading.XdpDatapath.Unpin(pin);
                Directory.Delete(directory, recursive: true);
            }

            measurements.Add(new("control-plane", "iptables-restore (kube-proxy layout)", $"{count}", TimeTool(netns.Name, "iptables-restore", RuleFiles.Iptables(count, Backends)), "s"));
            measurements.Add(new("control-plane", "nft -f (verdict map)", $"{count}", TimeTool(netns.Name, "nft", RuleFiles.Nftables(count, Backends), "-f"), "s"));
            log($"  iptables-restore {measurements[^2].Value:F3} s, nft {measurements[^1].Value:F3} s");
        }
        return new PartResult("control-plane", started, quick, measurements, notes);
    }

    private static string ConfigServices(int count)
    {
        var text = new StringBuilder();
        for (var s = 0; s < count; s++)
        {
            text.Append($"  s{s}:\n    vip: {RuleFiles.Vip(s)}\n    port: {RuleFiles.Port(s)}\n    mode: dnat\n    backends:\n");
            for (var b = 0; b < Backends; b++)
            {
                text.Append($"      - {{ address: {RuleFiles.Backend(s, b)}, port: 8080 }}\n");
            }
        }
        return text.ToString();
    }

    private static JsonObject Service(int index, int weight) => new()
    {
        ["vip"] = RuleFiles.Vip(index),
        ["port"] = RuleFiles.Port(index),
        ["mode"] = "dnat",
        ["backends"] = new JsonArray(Enumerable.Range(0, Backends).Select(b => (JsonNode)new JsonObject
        {
            ["address"] = RuleFiles.Backend(index, b), ["port"] = 8080, ["weight"] = b == 0 ? weight : 1,
        }).ToArray()),
    };

    private static async Task Put(HttpClient api, string name, JsonObject body)
    {
        using var response = await api.PutAsync($"/api/v1/services/{name}", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"PUT {name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static double TimeTool(string netns, string tool, string input, params string[] arguments)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, input);
            var watch = Stopwatch.StartNew();
            Command.Run("ip", ["netns", "exec", netns, tool, .. arguments, file]);
            return watch.Elapsed.TotalSeconds;
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static long Rss(int pid)
    {
        // nsenter execs dotnet, so the PID is the daemon's own.
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    public static double Percentile(List<double> values, int percentile)
    {
        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }
}
