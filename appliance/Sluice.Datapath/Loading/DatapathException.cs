namespace Sluice.Datapath.Loading;

/// <summary>The datapath cannot be loaded, attached or programmed as asked; the message says why and what to do.</summary>
public sealed class DatapathException : Exception
{
    public DatapathException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
