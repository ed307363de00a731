using Sluice.Cli;
using Sluice.Cli.Commands;

const string usage = """
    usage: sluicectl [--config FILE | --api URL --token-file FILE] [-o table|json] COMMAND
      status
      service list | get NAME | apply -f FILE | delete NAME
      backend add|remove|drain|undrain SERVICE ADDRESS:PORT [--weight N]
      flows [--service NAME] [--backend ADDRESS:PORT] [--limit N]
      events [--kind health|config|datapath|drain|api|next-hop] [--limit N]
      datapath remove
    exit codes: 0 ok, 1 refused by sluiced, 2 usage or input error, 3 sluiced unreachable
    """;
try
{
    var line = new CommandLine(args);
    return line.Words.Count == 0
        ? Fail(usage)
        : line.Words[0] switch
        {
            "status" => await StatusCommand.Run(line),
            "service" => await ServiceCommands.Run(line),
            "backend" => await BackendCommands.Run(line),
            "datapath" => await DatapathCommands.Run(line),
            "flows" => await ObservabilityCommands.Flows(line),
            "events" => await ObservabilityCommands.Events(line),
            _ => Fail(usage),
        };
}
catch (CliException ex)
{
    Console.Error.WriteLine($"sluicectl: {ex.Message}");
    return ex.ExitCode;
}

static int Fail(string usage)
{
    Console.Error.WriteLine(usage);
    return ExitCodes.Usage;
}
