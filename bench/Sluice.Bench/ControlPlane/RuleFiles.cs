using System.Text;

namespace Sluice.Bench.ControlPlane;

/// <summary>
/// The same services as iptables rules in kube-proxy's layout (a KUBE-SERVICES jump per
/// service, a chain per service choosing an endpoint with statistic/random, a chain per
/// endpoint doing DNAT), and as an nftables ruleset with a verdict map.
/// </summary>
public static class RuleFiles
{
    public static string Vip(int service) => $"198.18.{128 + (service / 250 / 100)}.{1 + (service / 100 % 250)}";

    public static int Port(int service) => 1000 + (service % 100);

    public static string Backend(int service, int backend) => $"198.19.{(service * 10 + backend) / 250 % 250}.{1 + ((service * 10 + backend) % 250)}";

    public static string Iptables(int services, int backends)
    {
        var text = new StringBuilder("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n");
        for (var s = 0; s < services; s++)
        {
            text.Append(":KUBE-SVC-").Append(s).Append(" - [0:0]\n");
            for (var b = 0; b < backends; b++)
            {
                text.Append(":KUBE-SEP-").Append(s).Append('-').Append(b).Append(" - [0:0]\n");
            }
        }
        text.Append("-A PREROUTING -j KUBE-SERVICES\n");
        for (var s = 0; s < services; s++)
        {
            text.Append($"-A KUBE-SERVICES -d {Vip(s)}/32 -p tcp -m tcp --dport {Port(s)} -j KUBE-SVC-{s}\n");
            for (var b = 0; b < backends; b++)
            {
                var probability = 1.0 / (backends - b);
                text.Append(b < backends - 1
                    ? $"-A KUBE-SVC-{s} -m statistic --mode random --probability {probability:F5} -j KUBE-SEP-{s}-{b}\n"
                    : $"-A KUBE-SVC-{s} -j KUBE-SEP-{s}-{b}\n");
                text.Append($"-A KUBE-SEP-{s}-{b} -p tcp -m tcp -j DNAT --to-destination {Backend(s, b)}:8080\n");
            }
        }
        return text.Append("COMMIT\n").ToString();
    }

    public static string Nftables(int services, int backends)
    {
        var text = new StringBuilder("table ip sluice_bench {\n");
        for (var s = 0; s < services; s++)
        {
            text.Append($"  chain svc{s} {{\n    dnat to numgen random mod {backends} map {{ ");
            text.Append(string.Join(", ", Enumerable.Range(0, backends).Select(b => $"{b} : {Backend(s, b)}")));
            text.Append(" }\n  }\n");
        }
        text.Append("  map services {\n    type ipv4_addr . inet_service : verdict\n    elements = { ");
        text.Append(string.Join(", ", Enumerable.Range(0, services).Select(s => $"{Vip(s)} . {Port(s)} : jump svc{s}")));
        text.Append(" }\n  }\n");
        text.Append("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr . tcp dport vmap @services\n  }\n}\n");
        return text.ToString();
    }
}
