"""Show, Attend and Tell's soft-attention decoder in PyTorch, written from the paper (Xu et al.
2015, section 3.1.2 and 4.2.1) and the description of sgrvinod's a-PyTorch-Tutorial-to-Image-
Captioning (`Attention`, `DecoderWithAttention`, its training loss), with the tutorial's module and
parameter names. The reference for caption-model's `DecoderWithAttention`
(tools/model/generate_attention_fixtures.py).
"""

import torch
from torch import nn


class Attention(nn.Module):
    """Additive attention: a score per encoder position from the encoder feature and the decoder
    state, softmax over positions, the weighted sum of the features."""

    def __init__(self, encoder_dim, decoder_dim, attention_dim):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)  # (batch, positions, attention_dim)
        att2 = self.decoder_att(decoder_hidden)  # (batch, attention_dim)
        att = self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)  # (batch, positions)
        alpha = self.softmax(att)
        context = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)  # (batch, encoder_dim)
        return context, alpha


class DecoderWithAttention(nn.Module):
    def __init__(self, attention_dim, embed_dim, decoder_dim, vocab_size, encoder_dim=2048, dropout=0.5):
        super().__init__()
        self.encoder_dim, self.decoder_dim, self.vocab_size = encoder_dim, decoder_dim, vocab_size
        self.attention = Attention(encoder_dim, decoder_dim, attention_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(p=dropout)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim, bias=True)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, encoder_dim)
        self.sigmoid = nn.Sigmoid()
        self.fc = nn.Linear(decoder_dim, vocab_size)

    def init_hidden_state(self, encoder_out):
        mean_encoder_out = encoder_out.mean(dim=1)
        return self.init_h(mean_encoder_out), self.init_c(mean_encoder_out)

    def forward(self, encoder_out, encoded_captions, caption_lengths):
        """encoder_out: (batch, positions, encoder_dim); encoded_captions: (batch, T) with <start>
        first; caption_lengths: (batch, 1) tokens counted, <end> included. Returns, sorted by
        decreasing length as the tutorial does: scores (batch, max decode length, vocab), the sorted
        captions, decode lengths, alphas (batch, max decode length, positions), the sort order."""
        batch_size = encoder_out.size(0)
        num_pixels = encoder_out.size(1)
        caption_lengths, sort_ind = caption_lengths.squeeze(1).sort(dim=0, descending=True)
        encoder_out = encoder_out[sort_ind]
        encoded_captions = encoded_captions[sort_ind]
        embeddings = self.embedding(encoded_captions)
        h, c = self.init_hidden_state(encoder_out)
        decode_lengths = (caption_lengths - 1).tolist()
        dtype = encoder_out.dtype
        predictions = torch.zeros(batch_size, max(decode_lengths), self.vocab_size, dtype=dtype)
        alphas = torch.zeros(batch_size, max(decode_lengths), num_pixels, dtype=dtype)
        for t in range(max(decode_lengths)):
            batch_size_t = sum([length > t for length in decode_lengths])
            context, alpha = self.attention(encoder_out[:batch_size_t], h[:batch_size_t])
            gate = self.sigmoid(self.f_beta(h[:batch_size_t]))
            context = gate * context
            h, c = self.decode_step(
                torch.cat([embeddings[:batch_size_t, t, :], context], dim=1), (h[:batch_size_t], c[:batch_size_t])
            )
            predictions[:batch_size_t, t, :] = self.fc(self.dropout(h))
            alphas[:batch_size_t, t, :] = alpha
        return predictions, encoded_captions, decode_lengths, alphas, sort_ind


def loss(scores, captions_sorted, decode_lengths, alphas, alpha_c=1.0):
    """The tutorial's training loss: cross-entropy over the packed (real) steps plus the doubly
    stochastic regularisation alpha_c * ((1 - sum_t alpha_t)^2).mean()."""
    targets = captions_sorted[:, 1:]
    packed_scores = nn.utils.rnn.pack_padded_sequence(scores, decode_lengths, batch_first=True).data
    packed_targets = nn.utils.rnn.pack_padded_sequence(targets, decode_lengths, batch_first=True).data
    cross_entropy = nn.functional.cross_entropy(packed_scores, packed_targets)
    return cross_entropy + alpha_c * ((1.0 - alphas.sum(dim=1)) ** 2).mean()


@torch.no_grad()
def greedy(model, encoder_out, sos, eos, max_length):
    """Greedy decoding of one image's grid (1, positions, encoder_dim): from <start>, the most
    likely word at each step until <end> or max_length words; the ids (the end included), their
    summed log-probability and each step's attention weights."""
    h, c = model.init_hidden_state(encoder_out)
    word = torch.tensor([sos])
    ids, log_prob, alphas = [], 0.0, []
    for _ in range(max_length):
        context, alpha = model.attention(encoder_out, h)
        context = model.sigmoid(model.f_beta(h)) * context
        h, c = model.decode_step(torch.cat([model.embedding(word), context], dim=1), (h, c))
        scores = torch.log_softmax(model.fc(h), dim=1)
        word = scores.argmax(dim=1)
        ids.append(word.item())
        log_prob += scores[0, word.item()].item()
        alphas.append(alpha[0])
        if word.item() == eos:
            break
    return ids, log_prob, torch.stack(alphas)
