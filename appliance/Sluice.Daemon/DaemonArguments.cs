namespace Sluice.Daemon;

/// <summary>sluiced [--config FILE] [--check-config | --remove-datapath]</summary>
public sealed record DaemonArguments(string ConfigPath, bool CheckConfig, bool RemoveDatapath)
{
    public const string DefaultConfigPath = "/etc/sluice/sluice.yaml";

    public static DaemonArguments Parse(string[] args)
    {
        var config = DefaultConfigPath;
        bool check = false, remove = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--config" when i + 1 < args.Length:
                    config = args[++i];
                    break;
                case "--check-config":
                    check = true;
                    break;
                case "--remove-datapath":
                    remove = true;
                    break;
                default:
                    throw new ArgumentException($"unknown argument {args[i]}; usage: sluiced [--config FILE] [--check-config | --remove-datapath]");
            }
        }
        return new(config, check, remove);
    }
}
