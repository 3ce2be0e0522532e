"""Small torch-geometric graph classifiers: ChebNet, GCN and GAT with global mean+max pooling.

Notebook: 08_spectral_graph_networks.

Each model maps a batch of graphs (a :class:`torch_geometric.data.Batch` from
:class:`torch_geometric.loader.DataLoader`) to one row of class logits per graph. The convolutions
are torch_geometric's own layers; ``course_lib.graphs.chebyshev_filter`` is the from-scratch
version of ``ChebConv`` that the notebook checks them against.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import ChebConv, GATConv, GCNConv, global_max_pool, global_mean_pool

__all__ = ["GraphClassifier", "ChebNetClassifier", "GCNClassifier", "GATClassifier"]


class GraphClassifier(nn.Module):
    """Stack of graph convolutions -> [mean ; max] pooling over each graph's nodes -> MLP head.

    Subclasses choose the convolution through :meth:`make_conv`.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    in_channels : int
        Node feature size.
    n_classes : int
        Number of graph classes.
    hidden : int
        Channels of every graph convolution.
    n_layers : int
        Number of graph convolutions (>= 1).
    dropout : float
        Dropout before the head.
    use_edge_weight : bool
        Pass ``data.edge_weight`` (if present) to convolutions that accept it.
    """

    accepts_edge_weight = True

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        hidden: int = 64,
        n_layers: int = 2,
        dropout: float = 0.2,
        use_edge_weight: bool = True,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1; got {n_layers}.")
        self.in_channels = in_channels
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        channels = in_channels
        for _ in range(n_layers):
            conv = self.make_conv(channels, hidden)
            self.convs.append(conv)
            self.norms.append(nn.LayerNorm(self.conv_out_channels(hidden)))
            channels = self.conv_out_channels(hidden)
        self.use_edge_weight = use_edge_weight and self.accepts_edge_weight
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2 * channels, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    def conv_out_channels(self, hidden: int) -> int:
        return hidden

    def forward(
        self,
        data: object,
        edge_index: torch.Tensor | None = None,
        batch: torch.Tensor | None = None,
        edge_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Graph-level logits.

        Parameters
        ----------
        data : Batch/Data, or node features torch.Tensor (N, in_channels)
            A batch from ``torch_geometric.loader.DataLoader`` (uses ``x``, ``edge_index``,
            ``batch`` and, if present, ``edge_weight``), or the node features themselves.
        edge_index : torch.Tensor, shape (2, E), optional
            Needed when ``data`` is a tensor.
        batch : torch.Tensor, shape (N,), optional
            Graph id of each node; all nodes in one graph when omitted.
        edge_weight : torch.Tensor, shape (E,), optional

        Returns
        -------
        torch.Tensor, shape (n_graphs, n_classes)
        """
        if isinstance(data, torch.Tensor):
            x = data
            if edge_index is None:
                raise ValueError("Pass edge_index (2, E) with node features, or pass a Data/Batch object.")
        else:
            x, edge_index = data.x, data.edge_index
            batch = getattr(data, "batch", None)
            edge_weight = getattr(data, "edge_weight", None)
        if x is None or x.ndim != 2 or x.shape[1] != self.in_channels:
            shape = None if x is None else tuple(x.shape)
            raise ValueError(f"Node features must be (N, {self.in_channels}); got {shape}.")
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        weight = edge_weight if self.use_edge_weight else None
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = conv(h, edge_index) if weight is None else conv(h, edge_index, weight)
            h = torch.relu(norm(h))
        pooled = torch.cat([global_mean_pool(h, batch), global_max_pool(h, batch)], dim=1)
        return self.head(pooled)


class ChebNetClassifier(GraphClassifier):
    """Graph classifier with Chebyshev spectral convolutions (``torch_geometric.nn.ChebConv``).

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    in_channels, n_classes, hidden, n_layers, dropout, use_edge_weight
        See :class:`GraphClassifier`.
    K : int
        Chebyshev order: each layer mixes nodes up to K-1 hops apart.
    """

    def __init__(self, in_channels: int, n_classes: int, hidden: int = 64, n_layers: int = 2,
                 dropout: float = 0.2, K: int = 3, use_edge_weight: bool = True) -> None:
        self.K = K
        super().__init__(in_channels, n_classes, hidden, n_layers, dropout, use_edge_weight)

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return ChebConv(in_channels, out_channels, K=self.K, normalization="sym")


class GCNClassifier(GraphClassifier):
    """Graph classifier with GCN convolutions (``torch_geometric.nn.GCNConv``): ChebNet with K=2
    and the renormalisation trick (self-loops, ``D^-1/2 (A + I) D^-1/2``).

    Notebook: 08_spectral_graph_networks.
    """

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return GCNConv(in_channels, out_channels)


class GATClassifier(GraphClassifier):
    """Graph classifier with attention convolutions (``torch_geometric.nn.GATConv``): neighbours
    are weighted by learned attention instead of fixed Laplacian weights.

    Notebook: 08_spectral_graph_networks.

    Parameters
    ----------
    heads : int
        Attention heads per layer; their outputs are concatenated (hidden * heads channels).
    """

    accepts_edge_weight = False

    def __init__(self, in_channels: int, n_classes: int, hidden: int = 32, n_layers: int = 2,
                 dropout: float = 0.2, heads: int = 2) -> None:
        self.heads = heads
        super().__init__(in_channels, n_classes, hidden, n_layers, dropout, use_edge_weight=False)

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return GATConv(in_channels, out_channels, heads=self.heads)

    def conv_out_channels(self, hidden: int) -> int:
        return hidden * self.heads
