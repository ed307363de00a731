namespace Sluice.Model.Services;

/// <summary>Who a service belongs to. A write through one owner never changes another's service.</summary>
public enum Owner
{
    Config,
    Api,
    Kubernetes,
}
